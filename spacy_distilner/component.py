"""The ``distilner`` factory and component: spaCy glue around the :class:`~.engine.Engine`.

``predict`` is one call to the engine (tokenize → windows → batches → backend → align/pool),
``set_annotations`` decodes and writes entities, serialization saves the model directory, and
the training hooks (``initialize``, ``update`` → ``get_loss`` → ``finish_update``) run the torch module
through its thinc wrapper, with targets and loss from ``training.loss`` and the model to train from
``training.heads``.
"""

# no ``from __future__ import annotations``: spaCy validates ``initialize``'s arguments from its real types
import dataclasses
import inspect
import warnings
from functools import partial
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Iterable, Iterator, Mapping, Optional, Sequence

import numpy as np
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc
from spacy.training import Example, validate_examples
from spacy.util import minibatch
from spacy.vocab import Vocab
from thinc.api import Optimizer

from .annotate import passes, run_or_retry_alone, write_entities
from .batching import Batch, PaddingStats
from .decode import TagSet, scored_spans, tag_path
from .engine import Engine, TokenScores
from .errors import Errors
from .extensions import install_extensions
from .loading import load_tokenizer, resolve_model_path
from .model_dir import MODEL_DIR, pack_dir, unpack_dir
from .settings import PRECISIONS, Settings, default_config, factory_signature
from .tokenize import tokenize_texts
from .training.heads import lr_scale, training_model
from .training.lora import is_lora
from .training.loss import batch_loss, gold_targets, training_tags

__all__ = ["DistilNER", "FACTORY", "PRECISIONS", "TokenScores", "component_name", "find_component", "make_distilner"]

FACTORY = "distilner"  # the factory name; a pipeline may name the component otherwise


class DistilNER(TrainablePipe):
    """Transformer token-classification NER over whole Docs, with per-token scores.

    ``hf_model`` / ``hf_tokenizer`` are the underlying transformers objects. With ``lora_r > 0``,
    ``initialize`` wraps the model with peft LoRA adapters; ``to_disk`` then saves it merged
    (plain transformers weights) plus the adapter alone under ``model/adapter``.
    """

    def __init__(
        self,
        vocab: Vocab,
        *,
        name: str = "distilner",
        lang: Optional[str] = None,
        scorer: Optional[Callable] = None,
        settings: Optional[Settings] = None,
        **changes: Any,
    ) -> None:
        """``settings`` (default: :class:`Settings`' defaults) with ``changes`` applied, e.g. ``backend="onnx"``."""
        self.settings = dataclasses.replace(settings or Settings(), **changes)
        self.vocab, self.name, self.lang, self.scorer = vocab, name, lang, scorer
        self._engine: Optional[Engine] = None
        install_extensions()

    # ------------------------------------------------------------------ loading
    def adopt(self, engine: Engine) -> None:
        """Run ``engine``; ``model`` wraps its torch module for training (None where the backend has none)."""
        from .backends.torch import thinc_model

        self._engine, self.model = engine, thinc_model(engine.backend, self.settings.precision)

    def _load(self, path: Path, owner: Any = None) -> None:
        """Run the model stored in ``path`` (``owner``: what keeps it on disk, see :meth:`from_bytes`)."""
        engine = Engine.from_dir(path, self.settings, owner)
        self.adopt(engine)
        languages = engine.languages
        if languages and self.lang and self.lang not in languages:
            warnings.warn(Errors.W002.format(model=self.model_name, languages=", ".join(languages), lang=self.lang))

    @property
    def engine(self) -> Engine:
        """The inference path, loading the model on first use."""
        if self._engine is None:
            self._load(resolve_model_path(self.settings.model))
        assert self._engine is not None
        return self._engine

    @property
    def _backend(self) -> Any:
        """The backend in use, or None before the model is loaded."""
        return self._engine.backend if self._engine is not None else None

    @property
    def model_name(self) -> str:
        return self.settings.model

    @property
    def cfg(self) -> Mapping[str, Any]:
        """The settings and the model's own (``temperature``, ``languages``), read-only."""
        engine = self._engine
        model = engine.model_settings() if engine else {"temperature": 1.0, "languages": None}
        return MappingProxyType({**self.settings.as_dict(), **model})

    @property
    def temperature(self) -> float:
        """The softmax temperature the model was calibrated with (``training.calibrate`` sets it)."""
        return self.engine.temperature

    @temperature.setter
    def temperature(self, value: float) -> None:
        self.engine.temperature = float(value)

    @property
    def hf_model(self) -> Any:
        """The transformers ``...ForTokenClassification`` module (while LoRA is active: with the
        adapter layers injected, sharing the trained weights)."""
        model = self.engine.hf_model
        return model.get_base_model() if is_lora(model) else model

    @property
    def hf_tokenizer(self) -> Any:
        """The transformers fast tokenizer."""
        return self.engine.tokenizer

    @property
    def tagset(self) -> TagSet:
        return self.engine.tagset

    @property
    def max_length(self) -> int:
        return self.engine.max_length

    @property
    def stride(self) -> int:
        return self.engine.stride

    @property
    def padding(self) -> PaddingStats:
        """Real and padded positions, and forward seconds, of every batch so far."""
        return self.engine.padding

    @property
    def backend_info(self) -> dict[str, Any]:
        """Backend, precision and device in use, and what this machine offers (``Engine.info``)."""
        return self.engine.info()

    @property
    def tag_labels(self) -> tuple[str, ...]:
        """Tag names in the order of ``ner_logits`` / ``ner_probs`` columns (empty until the model is loaded)."""
        return self._engine.tagset.tags if self._engine is not None else ()

    @property
    def labels(self) -> tuple[str, ...]:
        """Entity labels the model predicts (empty until the model is loaded)."""
        return self._engine.tagset.entity_labels if self._engine is not None else ()

    # ---------------------------------------------------------------- inference
    def __call__(self, doc: Doc) -> Doc:
        return next(iter(self.pipe([doc])))

    def pipe(self, stream: Iterable[Doc], *, batch_size: int = 128) -> Iterator[Doc]:
        """Annotate Docs in batches. When a batch fails, its Docs are retried one at a time, so only
        the Docs that fail on their own go to the pipeline's error handler; the others are annotated."""
        install_extensions()
        error_handler = self.get_error_handler()

        def annotated(docs: Sequence[Doc]) -> Sequence[Doc]:
            self.set_annotations(docs, self.predict(docs))
            return docs

        def failed(doc: Doc, err: Exception) -> tuple[Doc, ...]:
            error_handler(self.name, self, [doc], err)
            return ()

        for docs in minibatch(stream, size=batch_size):
            yield from run_or_retry_alone(docs, annotated, failed)

    def predict(self, docs: Iterable[Doc]) -> list[TokenScores]:
        """Token scores for each Doc; the Docs are not modified."""
        return self.engine.token_scores(list(docs))

    def set_annotations(self, docs: Iterable[Doc], scores: Sequence[TokenScores]) -> None:
        """Decode tags, filter by ``threshold`` and write entities (and arrays if ``store_probs``)."""
        settings, tagset = self.settings, self.engine.tagset
        for doc, score in zip(docs, scores):
            tag_ids = tag_path(score.logits, tagset, settings.decoding, score.skip)
            spans = scored_spans(score.probs, tag_ids, tagset, score.skip)
            spans = [span for span in spans if passes(span[3], settings.threshold)]
            write_entities(doc, spans, settings.ents_mode, settings.spans_key)
            if settings.store_probs:
                doc._.ner_logits = score.logits
                doc._.ner_probs = score.probs

    # ------------------------------------------------------------ serialization
    def _save(self, path: Path) -> None:
        """The model directory, from what the backend holds (its module, or the files it owns)."""
        self.engine.save(path)

    def to_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> None:
        """Save the model (safetensors, tokenizer files, ``distilner.json``) under ``path/model``.

        A LoRA-trained model is saved merged, and its adapter alone under ``path/model/adapter``
        (see ``training.heads.load_with_adapter``).

        Runtime settings (backend, precision, device, threshold, …) live in the pipeline's
        config, so ``spacy.load(path, config=...)`` can change them. ``exclude=["model"]`` saves nothing.
        """
        if MODEL_DIR not in exclude:
            self._save(Path(path) / MODEL_DIR)

    def from_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> "DistilNER":
        """Load what ``to_disk`` saved; no network, no pickle. ``exclude=["model"]`` loads nothing."""
        if MODEL_DIR not in exclude:
            self._load(Path(path) / MODEL_DIR)
        return self

    def to_bytes(self, *, exclude: Iterable[str] = ()) -> bytes:
        """All files of ``to_disk`` packed into one msgpack dict."""
        return pack_dir(lambda tmp: self.to_disk(tmp, exclude=exclude))

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = ()) -> "DistilNER":
        """Load what ``to_bytes`` packed; the unpacked files live as long as a backend that reads them."""
        unpacked = unpack_dir(bytes_data)
        if MODEL_DIR not in exclude:
            self._load(unpacked.path / MODEL_DIR, unpacked)
        return self

    def __reduce__(self) -> tuple:
        """Pickled and deep-copied through ``to_bytes`` (a backend's session and files do not pickle)."""
        data = self.to_bytes() if self._engine is not None else None
        return _restore, (self.vocab, self.name, self.lang, self.scorer, self.settings, data)

    # ----------------------------------------------------------------- training
    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
        labels: Optional[Sequence[str]] = None,
    ) -> None:
        """Tags for ``labels`` or the examples' entities, and the module to train (``training.heads``)."""
        tags = training_tags(labels, get_examples, self.settings.tag_scheme)
        path = resolve_model_path(self.settings.model)
        hf_model, report = training_model(path, tags, self.settings)
        if nlp is not None:
            nlp.meta["distilner_parameters"] = report
        stored = {"languages": [nlp.lang] if nlp is not None else None}  # what the model is trained on
        self.adopt(Engine.from_module(hf_model, load_tokenizer(path), self.settings, training=True, stored=stored))

    def update(
        self,
        examples: Iterable[Example],
        *,
        drop: float = 0.0,
        sgd: Optional[Optimizer] = None,
        losses: Optional[dict[str, float]] = None,
    ) -> dict[str, float]:
        """One gradient step: per batch of windows, forward, :meth:`get_loss` and backward (``drop`` is unused)."""
        losses = {} if losses is None else losses
        losses.setdefault(self.name, 0.0)
        validate_examples(examples, "DistilNER.update")
        engine, model = self.engine, self.model
        if model is None:
            raise ValueError(Errors.D019.format(backend=self.settings.backend))
        examples = [eg for eg in examples if len(eg.predicted)]
        pieces = tokenize_texts(engine.tokenizer, [eg.predicted.text for eg in examples])
        targets = gold_targets(examples, engine.tokenizer, engine.tagset, self.settings.label_pieces, pieces)
        for batch in engine.batches(pieces, engine.windows(pieces)):
            logits, backprop = model.begin_update((batch.input_ids, batch.attention_mask))
            loss, d_logits = self.get_loss(examples, (batch, logits), targets)
            backprop(d_logits)
            losses[self.name] += loss
        if sgd is not None:
            self.finish_update(sgd)
        return losses

    def get_loss(
        self, examples: Iterable[Example], scores: tuple[Batch, np.ndarray], targets: Optional[list[np.ndarray]] = None
    ) -> tuple[float, np.ndarray]:
        """Loss and gradient of ``scores`` (a batch of windows, its logits): its share of the mean over
        ``examples`` (``targets``: their gold piece tags, when :meth:`update` has them for every batch)."""
        if targets is None:
            targets = gold_targets(list(examples), self.engine.tokenizer, self.engine.tagset, self.settings.label_pieces)
        return batch_loss(*scores, targets, self.settings.label_smoothing)

    def finish_update(self, sgd: Optimizer) -> None:
        """Apply ``sgd`` to the trainable weights in place (the head's step ``head_lr_scale`` larger)."""
        from .backends.torch import apply_optimizer

        apply_optimizer(self.model, sgd, partial(lr_scale, head=self.settings.head_lr_scale))


def _restore(
    vocab: Vocab, name: str, lang: Optional[str], scorer: Optional[Callable], settings: Settings, data: Optional[bytes]
) -> DistilNER:
    """The component :meth:`DistilNER.__reduce__` pickled (its model from ``data``, else loaded on first use)."""
    pipe = DistilNER(vocab, name=name, lang=lang, scorer=scorer, settings=settings)
    return pipe.from_bytes(data) if data is not None else pipe


def make_distilner(nlp: Language, name: str, **config: Any) -> DistilNER:
    """Build the component from its config block; the model is loaded on first use (or by ``from_disk``)."""
    scorer = config.pop("scorer", None)
    return DistilNER(nlp.vocab, name=name, lang=nlp.lang, scorer=scorer, settings=Settings(**config))


_HEAD = [
    inspect.Parameter("nlp", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Language),
    inspect.Parameter("name", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=str),
]
make_distilner.__signature__ = factory_signature(_HEAD, DistilNER)  # type: ignore[attr-defined]
Language.factory(
    FACTORY,
    assigns=["doc.ents", "token.ent_iob", "token.ent_type", "doc._.ner_logits", "doc._.ner_probs"],
    default_config=default_config(),
    default_score_weights={"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0, "ents_per_type": None},
    func=make_distilner,
)


def component_name(config: Mapping[str, Any]) -> str:
    """The name of the first distilner component in a pipeline's config (ValueError when there is none)."""
    components = config.get("components", {})
    name = next((n for n, block in components.items() if block.get("factory") == FACTORY), None)
    if name is None:
        raise ValueError("The pipeline has no distilner component.")
    return name


def find_component(nlp: Language) -> DistilNER:
    """The first distilner component of ``nlp`` (ValueError when there is none)."""
    pipe = next((p for _, p in nlp.pipeline if isinstance(p, DistilNER)), None)
    if pipe is None:
        raise ValueError("The pipeline has no distilner component.")
    return pipe
