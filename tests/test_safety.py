"""Never lose the user's data: outputs that would destroy an input, over-long texts, one bad Doc in a batch."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import spacy
from spacy.language import Language
from typer.testing import CliRunner

from spacy_distilner.cli import app
from spacy_distilner.records import atomic_output, write_docs

pytestmark = pytest.mark.usefixtures("decision")  # every test under the fp32 and the bf16 decision

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


def _shard(d: Path) -> None:
    (d / "model.safetensors").rename(d / "model-00001-of-00001.safetensors")


def _corrupt(kind: str, d: Path) -> None:
    import json

    weights = d / "model.safetensors"
    if kind == "truncated_weights":
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    elif kind == "garbage_weights":
        weights.write_bytes(b"garbage" * 100)
    elif kind == "config_not_object":
        (d / "config.json").write_text("[1, 2]")
    elif kind == "config_not_json":
        (d / "config.json").write_text("{not json")
    elif kind == "empty_index":
        _shard(d)
        (d / "model.safetensors.index.json").write_text("")
    elif kind == "garbage_index":
        _shard(d)
        (d / "model.safetensors.index.json").write_text('{"weight_map": 5}')
    elif kind == "index_outside":
        weights.rename(d.parent / "outside.safetensors")
        (d / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"x": "../outside.safetensors"}}))
    elif kind == "id2label_keys":
        config = json.loads((d / "config.json").read_text())
        config["id2label"] = {str(i + 1): tag for i, tag in enumerate(config["id2label"].values())}
        (d / "config.json").write_text(json.dumps(config))
    elif kind == "empty_dir":
        for f in d.iterdir():
            f.unlink()


CORRUPT = {
    "truncated_weights": ("D022", "model.safetensors"),
    "garbage_weights": ("D022", "model.safetensors"),
    "config_not_object": ("D022", "config.json"),
    "config_not_json": ("D022", "config.json"),
    "empty_index": ("D022", "model.safetensors.index.json"),
    "garbage_index": ("D022", "model.safetensors.index.json"),
    "index_outside": ("D022", "outside the model directory"),
    "id2label_keys": ("D022", "id2label"),
    "empty_dir": ("D001", "config.json"),
}


@pytest.mark.parametrize("kind", list(CORRUPT))
def test_corrupted_model_dirs_are_named(iob_dir: Path, tmp_path: Path, kind: str) -> None:
    import shutil

    d = tmp_path / "broken"
    shutil.copytree(iob_dir, d)
    _corrupt(kind, d)
    code, where = CORRUPT[kind]
    pipe = spacy.blank("en").add_pipe("distilner", config={"model": str(d)})
    with pytest.raises(ValueError, match=code) as err:
        pipe.hf_model
    assert where in str(err.value) and len(str(err.value)) < 600
    inp = tmp_path / "in.txt"
    inp.write_text(TEXT)
    for command in (["annotate", inp, tmp_path / "o.jsonl"], ["render", inp, tmp_path / "o.html"], ["evaluate", inp]):
        result = _run(*command, "--model", d)
        assert result.exit_code == 1 and code in result.stderr and "Traceback" not in result.output
    result = _run("export-onnx", d, tmp_path / "exported", "--precision", "fp32")
    assert result.exit_code == 1 and code in result.stderr
    assert isinstance(result.exception, SystemExit)  # a clean exit, not an uncaught error


def test_changed_weights_fail_their_recorded_digest(nlp: Language, tmp_path: Path) -> None:
    import json

    nlp.to_disk(tmp_path / "p")
    model = tmp_path / "p" / "distilner" / "model"
    recorded = json.loads((model / "distilner.json").read_text())["weights"]
    assert set(recorded) == {"model.safetensors"} and len(recorded["model.safetensors"]["sha256"]) == 64
    assert spacy.load(tmp_path / "p")("John Smith").text == "John Smith"  # verifies and loads
    data = bytearray((model / "model.safetensors").read_bytes())
    data[-200:-100] = bytes(b ^ 0xFF for b in data[-200:-100])  # flipped bytes inside a tensor
    (model / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="D023.*SHA-256"):
        spacy.load(tmp_path / "p")
    (model / "model.safetensors").write_bytes(bytes(data[:-8]))
    with pytest.raises(ValueError, match="D02[23]"):
        spacy.load(tmp_path / "p")
