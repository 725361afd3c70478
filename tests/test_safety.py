"""Never lose the user's data: outputs that would destroy an input, over-long texts, one bad Doc in a batch."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import spacy
from spacy.language import Language
from typer.testing import CliRunner

from spacy_distilner.cli import app
from spacy_distilner.io import atomic_output, write_docs

TEXT = "John Smith went to New York.\nMary said the company in London was new.\n"


def _run(*args: object) -> object:
    return CliRunner().invoke(app, [str(a) for a in args])


def _same_file_outputs(tmp_path: Path) -> dict[str, Path]:
    inp = tmp_path / "x.txt"
    (tmp_path / "sub").mkdir()
    os.symlink(inp, tmp_path / "link.txt")
    os.link(inp, tmp_path / "hard.txt")
    return {
        "same": inp,
        "dotdot": tmp_path / "sub" / ".." / "x.txt",
        "symlink": tmp_path / "link.txt",
        "hardlink": tmp_path / "hard.txt",
    }


@pytest.mark.parametrize("command", ["annotate", "render"])
@pytest.mark.parametrize("kind", ["same", "dotdot", "symlink", "hardlink"])
def test_output_that_is_the_input_is_refused(iob_dir: Path, tmp_path: Path, command: str, kind: str) -> None:
    inp = tmp_path / "x.txt"
    inp.write_text(TEXT)
    out = _same_file_outputs(tmp_path)[kind]
    result = _run(command, inp, out, "--model", tmp_path / "no-model-loaded")  # refused before loading
    assert result.exit_code == 1
    assert "destroy the input" in " ".join(result.stderr.split())
    assert inp.read_text() == TEXT


def test_output_directory_and_output_inside_input_directory(iob_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text(TEXT)
    result = _run("annotate", tmp_path / "docs" / "a.txt", tmp_path / "docs", "--model", tmp_path / "nope")
    assert result.exit_code == 1 and "is a directory" in " ".join(result.stderr.split())
    result = _run("annotate", tmp_path / "docs", tmp_path / "docs" / "out.txt", "--model", tmp_path / "nope")
    assert result.exit_code == 1 and "inside the input directory" in " ".join(result.stderr.split())


def test_a_failed_write_keeps_the_old_output(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text("precious\n")

    def docs():
        yield spacy.blank("en")("fine")
        raise RuntimeError("crash while writing")

    with pytest.raises(RuntimeError):
        write_docs(docs(), str(out))
    assert out.read_text() == "precious\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]  # no temporary file left
    with atomic_output(out) as tmp:
        tmp.write_text("new\n")
    assert out.read_text() == "new\n"


def test_overlong_text_is_skipped_and_the_rest_of_its_batch_kept(iob_dir: Path, tmp_path: Path) -> None:
    inp = tmp_path / "in.txt"
    inp.write_text("John went to Paris.\n" + "x" * 1_000_001 + "\nMary is in London.\n")
    result = _run("annotate", inp, tmp_path / "out.jsonl", "--model", iob_dir)
    assert result.exit_code == 0, result.output
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    assert len(lines) == 2 and "Paris" in lines[0] and "London" in lines[1]
    assert "nlp.max_length" in " ".join(result.stderr.split())
    assert _run("annotate", inp, tmp_path / "o2.jsonl", "--model", iob_dir, "--on-error", "fail").exit_code == 1


def test_one_failing_doc_does_not_fail_its_batch(nlp: Language, monkeypatch: pytest.MonkeyPatch) -> None:
    pipe = nlp.get_pipe("distilner")
    predict = type(pipe).predict

    def fragile(self, docs):
        docs = list(docs)
        if any("boom" in d.text for d in docs):
            raise RuntimeError("bad doc")
        return predict(self, docs)

    monkeypatch.setattr(type(pipe), "predict", fragile)
    failed = []
    nlp.set_error_handler(lambda name, proc, docs, err: failed.extend(d.text for d in docs))
    texts = ["John went to Paris.", "boom", "Mary is in London."]
    docs = list(nlp.pipe(texts, batch_size=3))
    assert failed == ["boom"]
    assert [d.text for d in docs if d.has_extension("ner_probs") and d._.ner_probs is not None] == [texts[0], texts[2]]
