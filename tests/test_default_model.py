"""The shipped default English model: obvious entities, and F1 on CoNLL-2003 valid."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import spacy

from spacy_distilner.loading import KNOWN_MODELS
from spacy_distilner.training.corpus import conll_to_docs
from spacy_distilner.training.evaluate import evaluate


@pytest.fixture(scope="module")
def default_nlp():
    if not (KNOWN_MODELS["default"] / "config.json").is_file():
        reason = f"the default model is not shipped at {KNOWN_MODELS['default']}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    nlp = spacy.blank("en")
    nlp.add_pipe("distilner")
    return nlp


def test_finds_obvious_entities(default_nlp) -> None:
    doc = default_nlp("Angela Merkel met Tim Cook at the Apple offices in Cupertino, California, on Monday.")
    found = {(e.text, e.label_) for e in doc.ents}
    assert {("Angela Merkel", "PER"), ("Tim Cook", "PER"), ("Apple", "ORG"), ("Cupertino", "LOC"), ("California", "LOC")} <= found
    assert all(0.5 < e._.confidence <= 1.0 for e in doc.ents)


def test_conll_valid_f1(default_nlp, shared_data: Path) -> None:
    """Whole documents, gold words given (the CoNLL convention)."""
    golds = list(conll_to_docs(shared_data / "conll2003" / "valid.txt", default_nlp.vocab, fmt="conll2003"))
    result = evaluate(default_nlp, golds, gold_tokens=True)
    print({k: result[k] for k in ("ents_p", "ents_r", "ents_f")})
    assert result["ents_f"] >= 0.92
