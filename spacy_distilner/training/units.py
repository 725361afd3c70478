"""Training units drawn from whole documents: the documents, runs of sentences, single sentences.

Users tag single sentences and short texts as often as whole documents, so a model trained on
whole documents alone leans on context it will not always get. The reader
``spacy_distilner.MixedUnits.v1`` reads a DocBin of whole documents (with sentence starts) and
gives each document, per epoch, one kind of unit drawn with the configured weights:

* ``docs``: the document as it is;
* ``runs``: the document cut into runs of 2 … ``max_run`` consecutive sentences;
* ``sentences``: every sentence on its own.

``mode = "sample"`` (training) draws a new kind per document and epoch from ``seed`` + epoch;
``mode = "all"`` (evaluation) yields every kind with a positive weight for every document, so
a dev score measures whole documents and single sentences at once, the same on every call.
Entities never cross a sentence boundary in CoNLL-style corpora, so no unit cuts an entity.
"""

# No ``from __future__ import annotations``: spaCy 3.7 validates a registered reader's arguments with
# pydantic v1 (confection 0.1), which cannot resolve string annotations such as ``Literal[...]``.
import random
from pathlib import Path
from typing import Callable, Iterator, Literal, Optional

from spacy.language import Language
from spacy.tokens import Doc, DocBin
from spacy.training import Example
from spacy.util import registry

UnitKind = Literal["docs", "runs", "sentences"]
UNIT_KINDS: tuple[UnitKind, ...] = ("docs", "runs", "sentences")


def sentences(doc: Doc) -> list:
    """The sentences of ``doc``; the whole Doc when it has no sentence starts."""
    return list(doc.sents) if doc.has_annotation("SENT_START") else [doc[:]]


def sentence_docs(doc: Doc) -> list[Doc]:
    """Every sentence of ``doc`` as a Doc of its own, entities kept."""
    return [sent.as_doc() for sent in sentences(doc)]


def split_units(doc: Doc, kind: UnitKind, rng: random.Random, max_run: int = 5) -> list[Doc]:
    """The units of one kind that ``doc`` yields; a Doc without sentence starts is one sentence."""
    if kind == "docs":
        return [doc]
    if kind == "sentences":
        return sentence_docs(doc)
    sents = sentences(doc)
    units, i = [], 0
    while i < len(sents):
        n = rng.randint(2, max(2, max_run))
        run = sents[i : i + n]
        units.append(doc[run[0].start : run[-1].end].as_doc())
        i += n
    return units


class MixedUnits:
    """A corpus callable for ``spacy train``: ``reader(nlp)`` yields Examples of mixed units."""

    def __init__(
        self,
        path: str | Path,
        weights: dict[UnitKind, float],
        max_run: int = 5,
        mode: Literal["sample", "all"] = "sample",
        seed: int = 0,
        limit: int = 0,
        augmenter: Optional[Callable[[Language, Example], Iterator[Example]]] = None,
    ) -> None:
        if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
            raise ValueError(f"MixedUnits: weights must be >= 0 with a positive sum, got {weights}")
        if mode not in ("sample", "all"):
            raise ValueError(f"MixedUnits: mode must be 'sample' or 'all', got {mode!r}")
        if max_run < 2:
            raise ValueError(f"MixedUnits: max_run must be >= 2, got {max_run}")
        self.path = Path(path)
        self.kinds = [kind for kind in UNIT_KINDS if weights.get(kind, 0) > 0]
        self.weights = [weights[kind] for kind in self.kinds]
        self.max_run = max_run
        self.mode = mode
        self.seed = seed
        self.limit = limit
        self.augmenter = augmenter
        self.epoch = 0

    def units(self, docs: Iterator[Doc]) -> Iterator[Doc]:
        """The units of ``docs`` for the next call (a new draw per call in ``sample`` mode)."""
        rng = random.Random(self.seed + (self.epoch if self.mode == "sample" else 0))
        if self.mode == "sample":
            self.epoch += 1
        for doc in docs:
            kinds = self.kinds if self.mode == "all" else rng.choices(self.kinds, self.weights)
            for kind in kinds:
                yield from split_units(doc, kind, rng, self.max_run)

    def __call__(self, nlp: Language) -> Iterator[Example]:
        docs = DocBin().from_disk(self.path).get_docs(nlp.vocab)
        for n, unit in enumerate(self.units(docs)):
            if self.limit and n >= self.limit:
                return
            example = Example(nlp.make_doc(unit.text), unit)
            yield from self.augmenter(nlp, example) if self.augmenter else (example,)


@registry.readers("spacy_distilner.MixedUnits.v1")
def create_mixed_units_reader(
    path: str,
    docs: float = 0.4,
    runs: float = 0.3,
    sentences: float = 0.3,
    max_run: int = 5,
    mode: Literal["sample", "all"] = "sample",
    seed: int = 0,
    limit: int = 0,
    augmenter: Optional[Callable[[Language, Example], Iterator[Example]]] = None,
) -> Callable[[Language], Iterator[Example]]:
    """Registered reader: whole documents, runs of sentences and single sentences of a DocBin,
    each unit passed through ``augmenter`` when one is given (``[corpora.train.augmenter]``)."""
    weights = {"docs": docs, "runs": runs, "sentences": sentences}
    return MixedUnits(path, weights, max_run, mode, seed, limit, augmenter)
