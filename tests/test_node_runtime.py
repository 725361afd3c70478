"""The Node.js runtime (``runtimes/node``) against Python's ``annotate`` on the same exported tiny models.

Needs ``node`` on PATH and ``runtimes/node/node_modules`` (``cd runtimes/node && ONNXRUNTIME_NODE_INSTALL=skip
npm ci``): skipped with the reason when either is missing, failed instead on CI (``CI=true``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import shutil
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import spacy
from typer.testing import CliRunner

from spacy_distilner.casing import caps_view
from spacy_distilner.cli import app
from spacy_distilner.loading import load_tokenizer
from spacy_distilner.entity_record import DocRecord, doc_to_json, record_fields
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
# ALL-CAPS headlines and datelines: both runtimes read runs of 3+ such words Title Cased by default
HEADLINES = [
    "SOCCER - JAPAN GET LUCKY WIN , CHINA IN SURPRISE DEFEAT .",
    "JOHN SMITH AND MARY SMITH WENT TO NEW YORK WITH APPLE TODAY",
    "EU REJECTS GERMAN CALL TO BOYCOTT BRITISH LAMB .\nPeter Blackburn\nBRUSSELS 1996-08-22",
    "Results of the GERMAN FIRST DIVISION matches on Saturday : BAYERN MUNICH 2 HAMBURG 1",
    "THE PRESIDENT OF GERMANY SAID : GOOGLE , APPLE AND THE UNITED STATES\nJohn Smith said so in LONDON today .",
    "CRICKET - LEICESTERSHIRE TAKE OVER AT TOP\nLONDON 1996-08-30\nMARY SMITH OF PARIS took four for 38 .",
    " ".join(["GOOGLE SAID JOHN WENT TO PARIS WITH THE PRESIDENT OF GERMANY ."] * 8),  # several windows
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
def cased_model(tmp_path_factory: pytest.TempPathFactory, onnx_cache: Any) -> Path:
    """Tiny IOB2 model whose tokenizer keeps case (so the caps view changes what it reads), exported."""
    src = make_tiny_model(tmp_path_factory.mktemp("cased_src"), IOB2, seed=2, lowercase=False)
    return _export(src, tmp_path_factory.mktemp("cased"))


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
    fields = [name for name in record_fields(DocRecord) if name in DocRecord.__required_keys__]
    assert [list(r) for r in node] == [list(r) for r in python] == [fields] * len(TEXTS)
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


def _caps_texts(n: int) -> list[str]:
    """``TEXTS``, ``HEADLINES`` and ``n`` random texts of ALL-CAPS, mixed, uncased, astral and markup words between
    Python's and JavaScript's whitespace (U+001C, U+0085, U+FEFF differ), line breaks and other separators."""
    words = (
        "AAA BB C ab Ab \u00df \u0130ST \u1e9eX \u01c5 12 -- 1996-08-30 . \U00010400\U00010401 \U00010428 "
        "\u03a3\u039f\u03a6\u0399\u0391 \u00c7a O'NEILL \u0149A [SEP] [PAD] <s> [AB\ufeffCD]"
    ).split()
    gaps = [" ", " ", " ", "  ", "\n", "\r\n", "\t", "\u00a0", "\u2003", "\u2028", "\x1c", "\x85", "\ufeff", ""]
    rng = random.Random(0)
    generated = ["".join(rng.choice(words) + rng.choice(gaps) for _ in range(rng.randint(1, 14))) for _ in range(n)]
    return TEXTS + HEADLINES + generated


def test_caps_view_matches_python(node: str) -> None:
    """``src/casing.js`` gives Python's ``caps_view`` (lower and title) on many texts."""
    texts = _caps_texts(400)
    script = (
        "const { capsView } = require('./src/casing');"
        "const texts = JSON.parse(require('node:fs').readFileSync(0, 'utf8'));"
        "process.stdout.write(JSON.stringify(texts.map((t) => ['lower', 'title'].map((v) => capsView(t, v)))));"
    )
    done = subprocess.run(
        [node, "-e", script], cwd=NODE_DIR, input=json.dumps(texts), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    views = json.loads(done.stdout)
    expected = [[caps_view(t, "lower"), caps_view(t, "title")] for t in texts]
    assert [(t, v) for t, v, e in zip(texts, views, expected) if v != e] == []
    assert sum(v[1] != t for t, v in zip(texts, views)) > 50, "the texts need runs to recase"


def _differ(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two records have different entities, or confidences more than ``_assert_same``'s 1e-3 apart."""
    gaps = [abs(x["confidence"] - y["confidence"]) for x, y in zip(a["entities"], b["entities"])]
    return compare.spans(a) != compare.spans(b) or max(gaps, default=0.0) >= 1e-3


@pytest.mark.usefixtures("node")
def test_headlines_match_python_annotate(cased_model: Path, tmp_path: Path) -> None:
    """ALL-CAPS headlines on a cased model: Python's ``annotate`` and Node give the same entities under the
    default caps view (title), and under ``as-given`` and ``lower``; the views tag the headlines differently."""
    texts = TEXTS + HEADLINES
    inputs = compare.write_inputs(texts, tmp_path / "input.jsonl")
    python = {"title": compare.run_python(cased_model, inputs, tmp_path / "python.jsonl")}
    for view in ("as-given", "lower"):
        nlp = spacy.blank("en")
        config = {"model": str(cased_model), "backend": "onnx", "precision": "fp32", "caps_view": view}
        nlp.add_pipe("distilner", config=config)
        python[view] = [doc_to_json(doc) for doc in nlp.pipe(texts)]
    for view, records in python.items():
        options = [] if view == "title" else ["--caps-view", view]
        _assert_same(records, compare.run_node(cased_model, inputs, tmp_path / f"{view}.jsonl", options), 20)
    for view in ("title", "lower"):  # each view changes the headlines' entities, by more than the tolerance
        changed = [t for t, a, b in zip(texts, python[view], python["as-given"]) if _differ(a, b)]
        assert len(changed) >= 3 and set(changed) <= set(HEADLINES), (view, changed)


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


def test_record_schema_is_current() -> None:
    """``runtimes/node/test/record-schema.json``, which the Node tests hold its records to, is ``DocRecord``'s."""
    schema = _load("node_record_schema", NODE_DIR / "test" / "record_schema.py")
    assert json.loads(schema.SCHEMA.read_text(encoding="utf8")) == schema.schema()
