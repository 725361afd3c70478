"""The ``distilner`` CLI (annotate, render) on the tiny random model."""

from __future__ import annotations

import json
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
import spacy
from spacy.language import Language
from spacy.tokens import DocBin
from typer.testing import CliRunner, Result

from spacy_distilner.cli import app
from spacy_distilner.records import LOW_COLOR, LOW_MARKER
from tiny import IOB2

pytestmark = pytest.mark.usefixtures("decision")  # every test under the fp32 and the bf16 decision

TEXTS = ["John Smith went to New York with Apple.", "Mary said the company in London was new.", "", "Paris !"]


def _run(*args: str, stdin: str | bytes | None = None) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args], input=stdin)


def _annotate(inp: Path | str, out: Path | str, model: Path, *options: str, stdin: str | bytes | None = None) -> Result:
    return _run("annotate", inp, out, "--model", model, *options, stdin=stdin)


def _stderr(result: Result) -> str:
    """stderr with wasabi's line wrapping undone."""
    return " ".join(result.stderr.split())


def _jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def _ents(nlp: Language, text: str) -> list[dict]:
    """The entities the component itself finds, in the CLI's JSONL form."""
    return [
        {"start": e.start_char, "end": e.end_char, "label": e.label_, "text": e.text, "confidence": e._.confidence}
        for e in nlp(text).ents
    ]


def test_help() -> None:
    for command in ((), ("annotate",), ("render",), ("ray-annotate",)):
        result = _run(*command, "--help")
        assert result.exit_code == 0 and "Usage" in result.stdout


def test_text_file_to_jsonl(nlp: Language, iob_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("\n".join(TEXTS) + "\n", encoding="utf8")
    result = _annotate(tmp_path / "in.txt", tmp_path / "out.jsonl", iob_dir)
    assert result.exit_code == 0, result.output
    records = _jsonl((tmp_path / "out.jsonl").read_text(encoding="utf8"))
    assert [r["text"] for r in records] == TEXTS
    assert [r["meta"] for r in records] == [{"line": n} for n in range(1, 5)]
    assert [r["entities"] for r in records] == [_ents(nlp, t) for t in TEXTS]
    n_ents = sum(len(r["entities"]) for r in records)
    assert n_ents > 0 and f"4 docs, {n_ents} entities, 0 skipped" in _stderr(result) and "words/s" in _stderr(result)


def test_jsonl_fields_and_token_scores(iob_dir: Path, tmp_path: Path) -> None:
    lines = [json.dumps({"body": t, "info": {"id": i}}) for i, t in enumerate(TEXTS)]
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n\n", encoding="utf8")  # a blank line is no record
    fields = ("--text-field", "body", "--meta-field", "info")
    result = _annotate(tmp_path / "in.jsonl", tmp_path / "out.jsonl", iob_dir, *fields, "--token-scores")
    assert result.exit_code == 0, result.output
    records = _jsonl((tmp_path / "out.jsonl").read_text(encoding="utf8"))
    assert [(r["text"], r["meta"]) for r in records] == [(t, {"id": i}) for i, t in enumerate(TEXTS)]
    tokens = records[0]["tokens"]
    assert [t["text"] for t in tokens] == [TEXTS[0][t["start"] : t["end"]] for t in tokens]
    for token in tokens:
        assert tuple(token["probs"]) == IOB2
        assert sum(token["probs"].values()) == pytest.approx(1.0, rel=1e-5)


def test_directory_input(nlp: Language, iob_dir: Path, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "a.txt").write_text(TEXTS[0], encoding="utf8")
    (docs / "sub" / "b.txt").write_bytes(b"\xef\xbb\xbf" + TEXTS[1].encode())  # a BOM is dropped
    (docs / "notes.md").write_text("not a document", encoding="utf8")
    result = _annotate(docs, tmp_path / "out.jsonl", iob_dir)
    assert result.exit_code == 0, result.output
    records = _jsonl((tmp_path / "out.jsonl").read_text(encoding="utf8"))
    assert [(r["text"], r["meta"]["file"]) for r in records] == [(TEXTS[0], "a.txt"), (TEXTS[1], "sub/b.txt")]
    assert records[1]["entities"] == _ents(nlp, TEXTS[1])


@pytest.mark.parametrize("fmt", ["text", "jsonl"])
def test_stdin_to_stdout(iob_dir: Path, fmt: str) -> None:
    """The format of stdin is sniffed from its first line; JSONL goes to stdout, messages to stderr."""
    lines = TEXTS if fmt == "text" else [json.dumps({"text": t, "meta": i}) for i, t in enumerate(TEXTS)]
    result = _annotate("-", "-", iob_dir, stdin="\n".join(lines) + "\n")
    assert result.exit_code == 0, result.output
    records = _jsonl(result.stdout)
    assert [r["text"] for r in records] == TEXTS
    assert "4 docs" in _stderr(result) and "4 docs" not in result.stdout


def test_docbin_output_in_two_processes(nlp: Language, iob_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("\n".join(TEXTS), encoding="utf8")
    options = ("--threshold", "0.5", "--n-process", "2", "--batch-size", "1")
    result = _annotate(tmp_path / "in.txt", tmp_path / "out.spacy", iob_dir, *options)
    assert result.exit_code == 0, result.output
    docs = list(DocBin().from_disk(tmp_path / "out.spacy").get_docs(nlp.vocab))
    assert [d.text for d in docs] == TEXTS
    assert [d.user_data["meta"] for d in docs] == [{"line": n} for n in range(1, 5)]
    expected = [[(e["start"], e["end"], e["label"]) for e in _ents(nlp, t) if e["confidence"] >= 0.5] for t in TEXTS]
    assert [[(e.start_char, e.end_char, e.label_) for e in d.ents] for d in docs] == expected
    assert all(e._.confidence >= 0.5 for d in docs for e in d.ents)
    assert docs[0]._.ner_probs is None  # arrays are stored only with --token-scores


def _bad_jsonl(path: Path) -> Path:
    path.write_bytes(
        b'{"text": "Mary went to Paris."}\n'
        b'{"text": "broken\n'
        b'{"body": "no text field"}\n'
        b'{"text": "caf\xe9 latin-1"}\n'
        b'["a", "list"]\n'
        b'{"text": "lone \\ud800 surrogate"}\n'
        b'{"text": "John is in London."}\n'
    )
    return path


def test_bad_lines_are_reported_and_skipped(iob_dir: Path, tmp_path: Path) -> None:
    result = _annotate(_bad_jsonl(tmp_path / "in.jsonl"), tmp_path / "out.jsonl", iob_dir)
    assert result.exit_code == 0, result.output
    records = _jsonl((tmp_path / "out.jsonl").read_text(encoding="utf8"))
    assert [r["text"] for r in records] == ["Mary went to Paris.", "John is in London."]
    reasons = [
        "invalid JSON",
        "no string field 'text'",
        "invalid UTF-8",
        "expected a JSON object",
        "field 'text' holds a lone surrogate",
    ]
    for n, reason in enumerate(reasons, 2):
        assert f"in.jsonl:{n}: {reason}" in _stderr(result)
    assert "2 docs" in _stderr(result) and "5 skipped" in _stderr(result)


def test_bad_utf8_text_line(iob_dir: Path) -> None:
    result = _annotate("-", "-", iob_dir, "--format", "text", stdin=b"John went.\n\xff\xfe\nMary stayed.\n")
    assert result.exit_code == 0, result.output
    assert [r["meta"]["line"] for r in _jsonl(result.stdout)] == [1, 3]
    assert "<stdin>:2: invalid UTF-8" in _stderr(result)


def test_on_error_fail_exits_1(iob_dir: Path, tmp_path: Path) -> None:
    result = _annotate(_bad_jsonl(tmp_path / "in.jsonl"), tmp_path / "out.spacy", iob_dir, "--on-error", "fail")
    assert result.exit_code == 1
    assert "in.jsonl:2: invalid JSON" in _stderr(result)
    assert not (tmp_path / "out.spacy").exists()


def test_usage_errors_exit_1(iob_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("John", encoding="utf8")
    out = tmp_path / "out.jsonl"
    cases = [
        (("annotate", tmp_path / "missing.txt", out, "--model", iob_dir), "Input not found"),
        (("annotate", tmp_path / "in.txt", tmp_path / "no" / "out.jsonl", "--model", iob_dir), "Output directory"),
        (("annotate", tmp_path / "in.txt", out, "--model", tmp_path / "nope"), "D001"),
        (("annotate", tmp_path / "in.txt", out, "--model", iob_dir, "--pipeline", tmp_path), "not both"),
        (("annotate", tmp_path / "in.txt", out, "--model", iob_dir, "--precision", "int8"), "int8"),
    ]
    for args, message in cases:
        result = _run(*args)
        assert result.exit_code == 1 and message in _stderr(result), (args, result.output)


def test_saved_pipeline_with_overrides(nlp: Language, tmp_path: Path) -> None:
    nlp.to_disk(tmp_path / "pipe")
    overrides = ("--threshold", "0.5", "--device", "cpu")
    result = _run("annotate", "-", "-", "--pipeline", tmp_path / "pipe", *overrides, stdin=TEXTS[0])
    assert result.exit_code == 0, result.output
    [record] = _jsonl(result.stdout)
    assert record["entities"] == [e for e in _ents(nlp, TEXTS[0]) if e["confidence"] >= 0.5]
    no_ner = spacy.blank("en")
    no_ner.to_disk(tmp_path / "blank")
    result = _run("annotate", "-", "-", "--pipeline", tmp_path / "blank", stdin=TEXTS[0])
    assert result.exit_code == 1 and "no distilner component" in _stderr(result)


def test_render_shows_confidence(nlp: Language, iob_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("\n".join(TEXTS), encoding="utf8")
    result = _run("render", tmp_path / "in.txt", tmp_path / "out.html", "--model", iob_dir, "--limit", "1")
    assert result.exit_code == 0, result.output
    html = (tmp_path / "out.html").read_text(encoding="utf8")
    assert html.startswith("<!DOCTYPE html>") and "1 docs" in _stderr(result)
    ents = nlp(TEXTS[0]).ents
    assert any(e._.confidence < 0.5 for e in ents) and any(e._.confidence >= 0.5 for e in ents)
    for ent in ents:
        label = f"{ent.label_} {ent._.confidence:.2f}"
        assert (f"{label} {LOW_MARKER}" in html) == (ent._.confidence < 0.5) and label in html
    assert LOW_COLOR in html and "Mary" not in html  # --limit 1


def test_python_m_entry_point(iob_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``python -m spacy_distilner`` runs the same app (in-process: a subprocess would re-import torch)."""
    (tmp_path / "in.txt").write_text("John went to Paris.", encoding="utf8")
    argv = ["distilner", "annotate", str(tmp_path / "in.txt"), str(tmp_path / "out.jsonl"), "--model", str(iob_dir)]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_module("spacy_distilner", run_name="__main__")
    assert exit_info.value.code == 0
    assert json.loads((tmp_path / "out.jsonl").read_text(encoding="utf8"))["text"] == "John went to Paris."


def test_the_cli_starts_without_spacy_or_torch() -> None:
    """``distilner --help`` imports neither spaCy nor torch (the commands that run a pipeline do)."""
    code = "import sys, spacy_distilner.cli; print(sorted(m for m in ('torch', 'spacy', 'onnxruntime') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
