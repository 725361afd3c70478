"""Casing: length-preserving recase, the casing augmenter and evaluation in every casing."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import spacy
from hypothesis import given, strategies as st
from spacy.tokens import Doc, DocBin
from spacy.training import Example
from spacy.util import registry
from typer.testing import CliRunner

from spacy_distilner.casing import CASINGS, is_all_caps, recase
from spacy_distilner.cli import app
from spacy_distilner.training.augment import recased_doc
from spacy_distilner.training.units import MixedUnits, sentence_docs
from test_evaluate import conll_documents
from tiny import IOB2, make_tiny_model


def test_recase_each_casing() -> None:
    text = "Angela Merkel met O'Brien in New-York's FC Köln."
    assert recase(text, "as-given") == text
    assert recase(text, "lower") == text.lower()
    assert recase(text, "upper") == text.upper()
    assert recase(text, "title") == text.title() == "Angela Merkel Met O'Brien In New-York'S Fc Köln."
    with pytest.raises(ValueError, match="casing"):
        recase(text, "camel")  # type: ignore[arg-type]


def test_recase_keeps_length_where_python_does_not() -> None:
    text = "Straße İstanbul ŉ ﬁle"
    assert len(text.upper()) != len(text) and len(text.lower()) != len(text)
    for casing in CASINGS:
        assert len(recase(text, casing)) == len(text)
    assert recase("Straße", "upper") == "STRAßE"  # ß has no one-character capital: kept


@given(st.text(max_size=60), st.sampled_from(CASINGS))
def test_recase_never_moves_an_offset(text: str, casing: str) -> None:
    out = recase(text, casing)  # type: ignore[arg-type]
    assert len(out) == len(text)
    assert all(a.isspace() == b.isspace() for a, b in zip(text, out))


def test_is_all_caps() -> None:
    assert is_all_caps("CRICKET - LEICESTERSHIRE TAKE OVER .") and is_all_caps("LONDON 1996-08-30")
    assert not is_all_caps("Leicestershire took over .") and not is_all_caps("1996-08-30") and not is_all_caps("A")


def _gold(nlp: spacy.Language) -> Doc:
    words = ["Straße", "in", "Köln", ".", "Merkel", "spoke", "."]
    return Doc(nlp.vocab, words=words, spaces=[True] * 6 + [False], sent_starts=[1, 0, 0, 0, 1, 0, 0],
               ents=["B-LOC", "O", "B-LOC", "O", "B-PER", "O", "O"])


def test_recased_doc_keeps_words_entities_and_sentences() -> None:
    nlp = spacy.blank("en")
    gold = _gold(nlp)
    up = recased_doc(gold, recase(gold.text, "upper"))
    assert [t.text for t in up] == ["STRAßE", "IN", "KÖLN", ".", "MERKEL", "SPOKE", "."]
    assert [(e.start_char, e.end_char, e.label_) for e in up.ents] == [(e.start_char, e.end_char, e.label_) for e in gold.ents]
    assert [s.start for s in up.sents] == [0, 4]
    with pytest.raises(ValueError, match="offset"):
        recased_doc(gold, gold.text + "x")


def test_augmenter_draws_each_casing_with_its_weight() -> None:
    nlp = spacy.blank("en")
    gold = _gold(nlp)
    example = Example(nlp.make_doc(gold.text), gold)
    make = registry.augmenters.get("spacy_distilner.casing_augmenter.v1")
    random.seed(0)
    augment = make(as_given=1, lower=1, upper=1, title=1)
    seen = {}
    for _ in range(400):
        (eg,) = augment(nlp, example)
        ref = eg.reference
        assert eg.predicted.text == ref.text and len(ref.text) == len(gold.text)
        assert [(e.start_char, e.end_char, e.label_) for e in ref.ents] == [(e.start_char, e.end_char, e.label_) for e in gold.ents]
        seen[ref.text] = seen.get(ref.text, 0) + 1
    assert set(seen) == {recase(gold.text, c) for c in CASINGS}  # type: ignore[arg-type]
    assert all(60 < n < 140 for n in seen.values())
    (eg,) = make(as_given=0, lower=1, upper=0, title=0)(nlp, example)
    assert eg.reference.text == recase(gold.text, "lower")
    with pytest.raises(ValueError, match="weights"):
        make(as_given=0, lower=0, upper=0, title=0)
    with pytest.raises(ValueError, match="headlines"):
        make(headlines=1.5)


def test_headlines_uppercase_whole_sentences_of_as_given_units() -> None:
    nlp = spacy.blank("en")
    gold = _gold(nlp)
    example = Example(nlp.make_doc(gold.text), gold)
    augment = registry.augmenters.get("spacy_distilner.casing_augmenter.v1")(as_given=1, lower=0, upper=0, title=0, headlines=0.5)
    random.seed(1)
    texts = {next(iter(augment(nlp, example))).reference.text for _ in range(100)}
    assert texts == {gold.text, "STRAßE IN KÖLN . Merkel spoke .", "Straße in Köln . MERKEL SPOKE .", recase(gold.text, "upper")}


def test_mixed_units_reader_applies_the_augmenter(tmp_path: Path) -> None:
    nlp = spacy.blank("en")
    DocBin(docs=conll_documents(tmp_path, nlp)).to_disk(tmp_path / "train.spacy")
    augment = registry.augmenters.get("spacy_distilner.casing_augmenter.v1")(as_given=0, lower=0, upper=1, title=0)
    plain = [eg.reference.text for eg in MixedUnits(tmp_path / "train.spacy", {"sentences": 1})(nlp)]
    upper = [eg.reference for eg in MixedUnits(tmp_path / "train.spacy", {"sentences": 1}, augmenter=augment)(nlp)]
    assert [d.text for d in upper] == [t.upper() for t in plain]
    assert [e.text for d in upper for e in d.ents] == ["JOHN", "MARY"]


def test_evaluate_casing_and_all_caps_report(iob_dir: Path, tmp_path: Path) -> None:
    from spacy_distilner.training.evaluate import evaluate

    nlp = spacy.blank("en")
    docs = conll_documents(tmp_path, nlp)
    DocBin(docs=docs).to_disk(tmp_path / "gold.spacy")
    out = tmp_path / "s.json"
    base = ["evaluate", str(tmp_path / "gold.spacy"), "--model", str(iob_dir), "--gold-tokens", "-o", str(out)]
    for casing in CASINGS:
        result = CliRunner().invoke(app, [*base, "--casing", casing])
        assert result.exit_code == 0, result.output
        scores = json.loads(out.read_text())
        assert scores["casing"] == casing
        assert scores["all_caps"]["sentences"] == 0  # no sentence is ALL CAPS as given
    assert CliRunner().invoke(app, [*base, "--casing", "camel"]).exit_code != 0
    # an exact tagger scores 1.0 in any casing; the all-caps report counts the caps sentences of the gold
    tagger = spacy.blank("en")

    @spacy.Language.component("gold_copy_casing_test")
    def copy(doc: Doc) -> Doc:
        doc.ents = [doc.char_span(e.start_char, e.end_char, e.label_) for e in by_text[doc.text.lower()].ents]
        return doc

    golds = [recased_doc(d, recase(d.text, "upper")) if i == 1 else d for i, d in enumerate(docs)]
    by_text = {d.text.lower(): d for g in golds for d in (g, *sentence_docs(g))}
    tagger.add_pipe("gold_copy_casing_test")
    for casing in CASINGS:
        scores = evaluate(tagger, golds, gold_tokens=True, casing=casing)  # type: ignore[arg-type]
        assert scores["ents_f"] == 1.0 and scores["all_caps"]["sentences"] == 2
    scores = evaluate(tagger, golds, gold_tokens=False, per_sentence=True)
    assert scores["all_caps"]["sentences"] == 2 and scores["ents_f"] == 1.0


def test_caps_view_recases_runs_of_all_caps_words_only() -> None:
    from spacy_distilner.casing import caps_view

    text = "SOCCER - JAPAN GET LUCKY WIN , CHINA IN SURPRISE DEFEAT .\nLONDON 1996-08-30\nThe U.S. and NATO met in BERLIN ."
    titled = caps_view(text, "title")
    assert titled.splitlines() == ["Soccer - Japan Get Lucky Win , China In Surprise Defeat .", "LONDON 1996-08-30",
                                   "The U.S. and NATO met in BERLIN ."]
    assert caps_view(text, "lower").splitlines()[0] == "soccer - japan get lucky win , china in surprise defeat ."
    assert caps_view(text, "as-given") == text
    assert caps_view("LONDON 1996-08-30", "lower", min_words=1) == "london 1996-08-30"
    assert len(caps_view("STRAßE IN KÖLN IST ZU", "title")) == len("STRAßE IN KÖLN IST ZU")


@pytest.fixture(scope="module")
def cased_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random IOB2 model whose tokenizer keeps case (``JOHN`` and ``john`` are different pieces)."""
    return make_tiny_model(tmp_path_factory.mktemp("cased"), IOB2, seed=0, lowercase=False)


@pytest.mark.parametrize("view", ["lower", "title"])
def test_component_reads_the_caps_view_and_annotates_the_original_text(cased_dir: Path, view: str) -> None:
    from spacy_distilner.casing import caps_view

    text = "JOHN SMITH SAID TODAY , THE COMPANY IN LONDON IS NEW ."
    viewing = spacy.blank("en")
    viewing.add_pipe("distilner", config={"model": str(cased_dir), "caps_view": view})
    plain = spacy.blank("en")
    plain.add_pipe("distilner", config={"model": str(cased_dir), "caps_view": "as-given"})
    doc, ref = viewing(text), plain(caps_view(text, view))  # type: ignore[arg-type]
    assert doc.text == text
    assert [(e.start_char, e.end_char, e.label_) for e in doc.ents] == [(e.start_char, e.end_char, e.label_) for e in ref.ents]
    assert doc._.ner_probs is not None and abs(doc._.ner_probs - ref._.ner_probs).max() < 1e-5
    assert (abs(plain(text)._.ner_probs - doc._.ner_probs).max() > 1e-4)  # the view changed what the model read
