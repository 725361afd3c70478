"""Casing augmentation for ``spacy train``: units lowercased, UPPERCASED, Title Cased or as given.

spaCy ships ``spacy.lower_case.v1`` but no upper or title variant. ``[corpora.train.augmenter]``
with ``@augmenters = "spacy_distilner.casing_augmenter.v1"`` draws one casing per training unit
(the Examples the reader yields: documents, sentence runs or sentences) with the configured
weights, a new draw every epoch (spaCy seeds ``random`` for the run). Within a unit left as
given, ``headlines`` is the chance that each sentence is UPPERCASED on its own, like the
all-caps headlines inside CoNLL-2003 documents. Case changes keep every character's length
(``casing.recase``), so words, entity offsets and sentence starts stay the same.
"""

from __future__ import annotations

import random
from typing import Callable, Iterator

from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import registry

from ..casing import CASINGS, Casing, recase

Augmenter = Callable[[Language, Example], Iterator[Example]]


def recased_doc(doc: Doc, text: str) -> Doc:
    """``doc`` with its text replaced by ``text`` of the same length: words, spaces, entities and
    sentence starts kept (the words are the same character ranges of ``text``)."""
    if len(text) != len(doc.text):
        raise ValueError("recased_doc: the new text must keep every character offset")
    return Doc(
        doc.vocab,
        words=[text[t.idx : t.idx + len(t)] for t in doc],
        spaces=[bool(t.whitespace_) for t in doc],
        sent_starts=[t.is_sent_start for t in doc] if doc.has_annotation("SENT_START") else None,
        ents=[f"{t.ent_iob_}-{t.ent_type_}" if t.ent_type_ else (t.ent_iob_ or None) for t in doc],
    )


def headline_text(example: Example, chance: float) -> str:
    """The reference text with each sentence UPPERCASED with probability ``chance``."""
    ref = example.reference
    if not ref.has_annotation("SENT_START"):
        return recase(ref.text, "upper") if random.random() < chance else ref.text
    text = ref.text
    for sent in ref.sents:
        if random.random() < chance:
            a, b = sent.start_char, sent.end_char
            text = text[:a] + recase(text[a:b], "upper") + text[b:]
    return text


def casing_augmenter(
    nlp: Language, example: Example, *, weights: dict[Casing, float], headlines: float = 0.0
) -> Iterator[Example]:
    """One Example: ``example`` in a casing drawn with ``weights`` (as given: with headlines)."""
    casing = random.choices(list(weights), list(weights.values()))[0]
    text = example.reference.text
    new = headline_text(example, headlines) if casing == "as-given" else recase(text, casing)
    yield example if new == text else Example(nlp.make_doc(new), recased_doc(example.reference, new))


@registry.augmenters("spacy_distilner.casing_augmenter.v1")
def create_casing_augmenter(
    as_given: float = 0.4, lower: float = 0.25, upper: float = 0.2, title: float = 0.15, headlines: float = 0.0
) -> Augmenter:
    """Registered augmenter: each unit in one casing, drawn with these weights (any positive sum)."""
    weights = dict(zip(CASINGS, (as_given, lower, upper, title)))
    if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
        raise ValueError(f"casing_augmenter: weights must be >= 0 with a positive sum, got {weights}")
    if not 0.0 <= headlines <= 1.0:
        raise ValueError(f"casing_augmenter: headlines must be in [0, 1], got {headlines}")
    weights = {k: w for k, w in weights.items() if w > 0}

    def augment(nlp: Language, example: Example) -> Iterator[Example]:
        return casing_augmenter(nlp, example, weights=weights, headlines=headlines)

    return augment
