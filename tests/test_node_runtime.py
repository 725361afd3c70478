"""The Node.js runtime (``runtimes/node``) against Python's ``annotate`` on the same exported tiny models.

Needs ``node`` on PATH and ``runtimes/node/node_modules`` (``cd runtimes/node && ONNXRUNTIME_NODE_INSTALL=skip
npm ci``): skipped with the reason when either is missing, failed instead on CI (``CI=true``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import spacy
from typer.testing import CliRunner

from spacy_distilner.cli import app
from spacy_distilner.loading import load_tokenizer
from spacy_distilner.records import doc_to_json
from spacy_distilner.tokenize import tokenize_texts
from tiny import BILOU, IOB2, make_tiny_model

NODE_DIR = Path(__file__).resolve().parents[1] / "runtimes" / "node"
SHIPPED = Path(__file__).resolve().parents[1] / "spacy_distilner" / "models" / "en_conll03"
# words where spaCy's tokens and the BERT pre-tokenizer's words agree (see runtimes/node/README.md)
TEXTS = [
    "John Smith went to New York with Apple in the United States today.",
    "",
    "Mary said the company in London was new, and Paris (Germany) said so too!",
    "The U.S. president met John  Smith and Mary\u00a0Smith in Paris\ton Monday.",
    "Google, Apple and the \"world\" company: people of the year; new york city?",
    "Caf\u00e9 M\u00fcller in Z\u00fcrich \u2014 e\u0301t\u00e9 2-1 1996-08-30",
    " ".join(["Google said John went to Paris with the president of Germany."] * 12),  # several windows
    "   ",
]


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


compare = _load("node_compare", NODE_DIR / "compare.py")


@pytest.fixture(scope="module")
def node() -> str:
    """The ``node`` executable; skip (fail on CI) when it or the runtime's packages are missing."""
    path = shutil.which("node")
    reason = None
    if path is None:
        reason = "node is not on PATH"
    elif not (NODE_DIR / "node_modules" / "onnxruntime-node").is_dir():
        reason = "runtimes/node/node_modules is missing (cd runtimes/node && ONNXRUNTIME_NODE_INSTALL=skip npm ci)"
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    assert path is not None
    return path


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Python's ONNX exports and digests go to a per-module cache, not the user's."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DISTILNER_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


def _export(src: Path, out: Path, settings: dict[str, Any] | None = None) -> Path:
    """``export-onnx SRC OUT --precision fp32``, then ``distilner.json`` with ``settings``."""
    result = CliRunner().invoke(app, ["export-onnx", str(src), str(out), "--precision", "fp32"])
    assert result.exit_code == 0, result.output
    if settings:
        (out / "distilner.json").write_text(json.dumps(settings))
    return out


@pytest.fixture(scope="module")
def iob_model(tmp_path_factory: pytest.TempPathFactory, onnx_cache: Any) -> Path:
    """Tiny IOB2 model, exported, with a stored temperature and a short window (24 pieces, overlap 5)."""
    src = make_tiny_model(tmp_path_factory.mktemp("iob_src"), IOB2, seed=0)
    return _export(src, tmp_path_factory.mktemp("iob"), {"temperature": 1.7, "max_length": 24, "stride": 5})


@pytest.fixture(scope="module")
def bilou_model(tmp_path_factory: pytest.TempPathFactory, onnx_cache: Any) -> Path:
    """Tiny BILOU model, exported, without ``distilner.json`` (the model's window, a quarter overlap)."""
    src = make_tiny_model(tmp_path_factory.mktemp("bilou_src"), BILOU, seed=1)
    return _export(src, tmp_path_factory.mktemp("bilou"))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return compare.write_inputs(TEXTS, tmp_path_factory.mktemp("inputs") / "input.jsonl")


def _assert_same(python: list[dict[str, Any]], node: list[dict[str, Any]], min_entities: int) -> None:
    result = compare.compare(python, node)
    assert result["differing"] == []
    assert result["max_confidence_gap"] < 1e-3
    assert result["python_entities"] >= min_entities, "the comparison needs entities"


@pytest.mark.usefixtures("node")
def test_cli_matches_python_annotate(iob_model: Path, inputs: Path, tmp_path: Path) -> None:
    python = compare.run_python(iob_model, inputs, tmp_path / "python.jsonl")
    node = compare.run_node(iob_model, inputs, tmp_path / "node.jsonl")
    assert [list(r) for r in node] == [list(r) for r in python] == [["text", "meta", "entities"]] * len(TEXTS)
    assert [list(e) for r in node for e in r["entities"]] == [list(e) for r in python for e in r["entities"]]
    _assert_same(python, node, min_entities=20)


@pytest.mark.usefixtures("node")
@pytest.mark.parametrize(
    "model,decoding,threshold", [("iob", "greedy", 0.0), ("bilou", "viterbi", 0.0), ("bilou", "greedy", 0.6)]
)
def test_decoding_and_threshold_match_python(
    model: str, decoding: str, threshold: float, request: pytest.FixtureRequest, inputs: Path, tmp_path: Path
) -> None:
    path: Path = request.getfixturevalue(f"{model}_model")
    nlp = spacy.blank("en")
    config = {"model": str(path), "backend": "onnx", "precision": "fp32", "decoding": decoding, "threshold": threshold}
    nlp.add_pipe("distilner", config=config)
    python = [doc_to_json(doc) for doc in nlp.pipe(TEXTS)]
    options = ["--decoding", decoding, "--threshold", str(threshold)]
    _assert_same(python, compare.run_node(path, inputs, tmp_path / "node.jsonl", options), min_entities=10)


def test_node_test_runner_passes(iob_model: Path, tmp_path: Path, node: str) -> None:
    """``node --test`` with the model tests on, and the JS tokenizer checked against Python's on two real tokenizers."""
    texts = TEXTS + [
        "naïve U.S.-based Ö\u0308z\u0131 \u65e5\u672c \U0001f600 x\x00y [SEP] \ufeffa\u200bb",
        "e\u0301\u0301 \u0130stanbul",
    ]
    cases = []
    for directory in (iob_model, SHIPPED):
        pieces = tokenize_texts(load_tokenizer(directory), texts)
        expected = [{"ids": p.ids.tolist(), "offsets": p.offsets.tolist()} for p in pieces]
        cases.append({"dir": str(directory), "texts": texts, "expected": expected})
    (tmp_path / "pieces.json").write_text(json.dumps(cases))
    env = {**os.environ, "DISTILNER_NODE_MODEL": str(iob_model), "DISTILNER_NODE_PIECES": str(tmp_path / "pieces.json")}
    done = subprocess.run([node, "--test", "test/"], cwd=NODE_DIR, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "# fail 0" in done.stdout and "# skipped 0" in done.stdout, done.stdout[-2000:]


def test_tokenizer_fixture_is_current() -> None:
    """``runtimes/node/test/tokenizer-fixture.json`` is what the installed ``tokenizers`` gives."""
    fixture = _load("node_tokenizer_fixture", NODE_DIR / "test" / "tokenizer_fixture.py")
    assert json.loads(fixture.FIXTURE.read_text(encoding="utf8")) == json.loads(json.dumps(fixture.fixture()))
