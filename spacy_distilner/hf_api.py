"""A drop-in for ``transformers.pipeline("token-classification", aggregation_strategy="first")``.

``pipeline(...)("John lives in Paris")`` returns the same list of dicts (``entity_group``,
``score``, ``word``, ``start``, ``end``: the entity records of ``distilner annotate`` under
transformers' key names, ``HF_KEYS``), computed by the distilner component on ``nlp.pipe``:
whole-document windows, batching by tokens, calibrated scores and spaCy tokenization.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence, Union, overload

import spacy
from spacy.language import Language
from spacy.tokens import Doc

from .entity_record import entity_to_json

Entity = dict[str, Any]
#: The key of each field of an ``entity_record.EntityRecord`` in transformers' entity dicts, in their order.
HF_KEYS = {"entity_group": "label", "score": "confidence", "word": "text", "start": "start", "end": "end"}


class DistilNERPipeline:
    """Callable on a string (-> list of entity dicts) or a list of strings (-> one list per string)."""

    def __init__(self, nlp: Language, batch_size: int = 32) -> None:
        self.nlp = nlp
        self.batch_size = batch_size

    @staticmethod
    def _entities(doc: Doc) -> list[Entity]:
        """The entity records of ``doc`` under transformers' keys (``HF_KEYS``)."""
        records: Iterable[Mapping[str, Any]] = map(entity_to_json, doc.ents)
        return [{hf: record[ours] for hf, ours in HF_KEYS.items()} for record in records]

    @overload
    def __call__(self, inputs: str) -> list[Entity]: ...

    @overload
    def __call__(self, inputs: Sequence[str]) -> list[list[Entity]]: ...

    def __call__(self, inputs: Union[str, Sequence[str]]) -> Union[list[Entity], list[list[Entity]]]:
        texts = [inputs] if isinstance(inputs, str) else inputs
        results = [self._entities(doc) for doc in self.nlp.pipe(texts, batch_size=self.batch_size)]
        return results[0] if isinstance(inputs, str) else results


def pipeline(
    model: str = "default",
    device: str = "auto",
    backend: str = "torch",
    precision: str = "fp32",
    threshold: float = 0.0,
    batch_size: int = 32,
    lang: str = "en",
    decoding: str = "greedy",
) -> DistilNERPipeline:
    """Load ``model`` (a shipped name or a model directory) into a blank ``lang`` pipeline, ready to call.

    ``decoding="greedy"`` (per-token argmax) gives transformers' output; ``"viterbi"`` the
    component's default, the most probable valid tag sequence.
    """
    nlp = spacy.blank(lang)
    config = {
        "model": model,
        "device": device,
        "backend": backend,
        "precision": precision,
        "threshold": threshold,
        "decoding": decoding,
        "store_probs": False,
    }
    _ = nlp.add_pipe("distilner", config=config).engine  # load now: a bad model fails here, like transformers
    return DistilNERPipeline(nlp, batch_size)
