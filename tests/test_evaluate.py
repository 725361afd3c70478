"""Evaluation: per-type scores and the token confusion table, via Python and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import spacy
from spacy.tokens import DocBin, Span
from spacy.training import Example
from typer.testing import CliRunner

from spacy_distilner.cli import app
from spacy_distilner.training.evaluate import confusion
from tiny import training_docs


def test_confusion_counts_tokens_by_gold_and_predicted_type() -> None:
    nlp = spacy.blank("en")
    gold = training_docs(nlp, 1)[0]  # "John Smith said the company Apple is in London ."
    pred = nlp.make_doc(gold.text)
    pred.set_ents([Span(pred, 0, 1, "PER"), Span(pred, 5, 6, "LOC")], default="outside")
    table = confusion([Example(pred, gold)])
    assert table["PER"] == {"LOC": 0, "O": 1, "ORG": 0, "PER": 1}
    assert table["ORG"]["LOC"] == 1 and table["LOC"]["O"] == 1
    assert table["O"]["O"] == 6


def test_evaluate_cli_writes_scores(iob_dir: Path, tmp_path: Path) -> None:
    nlp = spacy.blank("en")
    DocBin(docs=training_docs(nlp, 6)).to_disk(tmp_path / "gold.spacy")
    result = CliRunner().invoke(
        app, ["evaluate", str(tmp_path / "gold.spacy"), "--model", str(iob_dir), "--output", str(tmp_path / "s.json")]
    )
    assert result.exit_code == 0, result.output
    scores = json.loads((tmp_path / "s.json").read_text())
    assert {"ents_f", "ents_per_type", "confusion"} <= set(scores) and scores["docs"] == 6
    assert "confusion" in result.output
    result = CliRunner().invoke(app, ["evaluate", str(tmp_path / "gold.spacy"), "--model", str(iob_dir), "--gold-tokens"])
    assert result.exit_code == 0, result.output
    base = ["evaluate", str(tmp_path / "gold.spacy"), "--model", str(iob_dir)]
    result = CliRunner().invoke(app, [*base, "--backend", "onnx", "--precision", "int8", "--decoding", "greedy"])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(app, [*base, "--decoding", "beam"])
    assert result.exit_code == 1 and "decoding" in result.output


def test_gold_tokens_keep_the_gold_words(iob_dir: Path) -> None:
    from spacy_distilner.training.evaluate import evaluate

    nlp = spacy.blank("en")
    nlp.add_pipe("distilner", config={"model": str(iob_dir)})
    gold = spacy.tokens.Doc(nlp.vocab, words=["Russian-born", "Apple"], spaces=[True, False])
    gold.set_ents([Span(gold, 1, 2, "ORG")], default="outside")
    assert evaluate(nlp, [gold], gold_tokens=True)["confusion"]["ORG"]  # scored on the 2 gold words
    assert len(nlp.make_doc(gold.text)) > 2  # while spaCy's tokenizer splits the first word


def test_per_sentence_tags_each_sentence_alone(iob_dir: Path, tmp_path: Path) -> None:
    nlp = spacy.blank("en")
    docs = list(conll_documents(tmp_path, nlp))
    DocBin(docs=docs).to_disk(tmp_path / "gold.spacy")
    out = tmp_path / "s.json"
    base = ["evaluate", str(tmp_path / "gold.spacy"), "--model", str(iob_dir), "--gold-tokens", "-o", str(out)]
    result = CliRunner().invoke(app, [*base, "--per-sentence"])
    assert result.exit_code == 0, result.output
    scores = json.loads(out.read_text())
    assert scores["context"] == "sentence" and scores["docs"] == sum(len(list(d.sents)) for d in docs) == 5
    assert CliRunner().invoke(app, base).exit_code == 0
    assert json.loads(out.read_text())["context"] == "document" and json.loads(out.read_text())["docs"] == 2


def conll_documents(tmp_path: Path, nlp) -> list:
    """Two CoNLL-2003 documents of 3 and 2 sentences."""
    from spacy_distilner.training.corpus import conll_to_docs

    lines = ["-DOCSTART- -X- -X- O", ""]
    for doc in (["John Smith said .", "Apple is in London .", "Mary went ."], ["Paris is big .", "Google said ."]):
        for sent in doc:
            lines += [f"{w} X X {'B-PER' if w in ('John', 'Mary') else 'O'}" for w in sent.split()] + [""]
        lines += ["-DOCSTART- -X- -X- O", ""]
    (tmp_path / "gold.txt").write_text("\n".join(lines[:-2]) + "\n")
    return list(conll_to_docs(tmp_path / "gold.txt", nlp, fmt="conll2003"))


def test_compare_cli_counts_identical_entities(iob_dir: Path, tmp_path: Path) -> None:
    DocBin(docs=training_docs(spacy.blank("en"), 12)).to_disk(tmp_path / "gold.spacy")
    base = ["compare", str(tmp_path / "gold.spacy"), "--model", str(iob_dir), "--precision", "fp32"]
    same = CliRunner().invoke(app, [*base, "--other-backend", "onnx", "-o", str(tmp_path / "same.json")])
    assert same.exit_code == 0, same.output
    result = json.loads((tmp_path / "same.json").read_text())
    assert result["texts"] == 12 and result["identical"] == 12 and result["entities_a"] == result["entities_b"] > 0
    assert result["max_prob_diff"] < 1e-4 and result["a"]["backend"] == "torch" and result["b"]["backend"] == "onnx"
    int8 = CliRunner().invoke(app, [*base, "--other-backend", "onnx", "--other-precision", "int8", "--per-sentence"])
    assert int8.exit_code == 0, int8.output
    assert json.loads(int8.output)["max_prob_diff"] > 0.0  # int8 rounding shows
