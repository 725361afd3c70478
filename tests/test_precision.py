"""precision = "auto": bf16 weights where the CPU has native bf16, fp32 elsewhere; CPU detection."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
import spacy
from safetensors import safe_open
from typer.testing import CliRunner

from spacy_distilner.backends import resolve_precision
from spacy_distilner.cli import app
from spacy_distilner.cpu import FLAGS_ENV, cpu_info, parse_cpuinfo

XEON = "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8480+\nflags\t\t: fpu avx2 avx512f avx512_vnni avx512_bf16 amx_tile amx_bf16 amx_int8\n"
EPYC = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse avx2 fma\n"
TEXTS = ["John Smith went to New York with Apple.", "Mary said the company in London was new.", "Paris !"]


@pytest.fixture()
def amx(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Decide as on a CPU with AMX and AVX512-BF16 (bf16 math still runs here, only slower)."""
    monkeypatch.setenv(FLAGS_ENV, "avx2,avx512f,avx512_vnni,avx512_bf16,amx_tile,amx_bf16,amx_int8")
    cpu_info.cache_clear()
    yield
    monkeypatch.delenv(FLAGS_ENV)
    cpu_info.cache_clear()


def test_parse_cpuinfo() -> None:
    xeon, epyc = parse_cpuinfo(XEON), parse_cpuinfo(EPYC)
    assert xeon.model.startswith("Intel") and xeon.native_bf16 and xeon.int8_family == "vnni"
    assert epyc.flags == ("avx2",) and not epyc.native_bf16 and epyc.int8_family == "avx2"
    assert parse_cpuinfo("").flags == ()


def test_resolve_precision(amx: None) -> None:
    assert resolve_precision("torch", "auto", "cpu") == "bf16"
    assert resolve_precision("torch", "auto", "cpu", training=True) == "fp32"
    assert resolve_precision("torch", "auto", "cuda:0") == "bf16"
    assert resolve_precision("torch", "fp32", "cpu") == "fp32"
    assert resolve_precision("onnx", "auto", "cpu") == "fp32"
    assert resolve_precision("onnx", "int8", "cpu") == "int8"


def test_resolve_precision_without_native_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FLAGS_ENV, "avx2")
    cpu_info.cache_clear()
    try:
        assert resolve_precision("torch", "auto", "cpu") == "fp32"
        with pytest.warns(UserWarning, match="W001"):
            assert resolve_precision("torch", "bf16", "cpu") == "fp32"
    finally:
        monkeypatch.delenv(FLAGS_ENV)
        cpu_info.cache_clear()


def _pipe(model: Path, precision: str):
    nlp = spacy.blank("en")
    pipe = nlp.add_pipe("distilner", config={"model": str(model), "precision": precision, "device": "cpu"})
    return nlp, pipe


def test_auto_runs_bf16_weights_with_the_fp32_entities(amx: None, iob_dir: Path, tmp_path: Path) -> None:
    import torch

    nlp32, _ = _pipe(iob_dir, "fp32")
    nlp, pipe = _pipe(iob_dir, "auto")
    assert pipe.backend_info["precision"] == "bf16" and pipe.backend_info["configured_precision"] == "auto"
    assert {p.dtype for p in pipe.hf_model.parameters()} == {torch.bfloat16}  # weights, not autocast
    for text in TEXTS:
        a, b = nlp32(text), nlp(text)
        assert b._.ner_probs.dtype == np.float32  # upcast before the softmax
        np.testing.assert_allclose(b._.ner_probs, a._.ner_probs, atol=0.05)
        logits = np.sort(a._.ner_logits, axis=-1)
        clear = (logits[:, -1] - logits[:, -2]) > 0.5  # tokens whose fp32 argmax is not a near tie
        assert (a._.ner_probs.argmax(-1) == b._.ner_probs.argmax(-1))[clear].all()
    nlp.to_disk(tmp_path / "p")  # the weights as held: bf16, the same entities when loaded under this decision
    with safe_open(str(tmp_path / "p" / "distilner" / "model" / "model.safetensors"), framework="pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.bfloat16}
    loaded = spacy.load(tmp_path / "p")
    for text in TEXTS:
        assert [(e.start, e.end, e.label_) for e in loaded(text).ents] == [(e.start, e.end, e.label_) for e in nlp(text).ents]


def test_training_resolves_auto_to_fp32(amx: None, iob_dir: Path) -> None:
    from spacy.training import Example

    from tiny import training_docs

    nlp = spacy.blank("en")
    pipe = nlp.add_pipe("distilner", config={"model": str(iob_dir), "precision": "auto", "device": "cpu"})
    docs = training_docs(nlp, 2)
    nlp.initialize(lambda: [Example(nlp.make_doc(d.text), d) for d in docs])
    assert pipe.backend_info["precision"] == "fp32"


def test_info_command(iob_dir: Path) -> None:
    result = CliRunner().invoke(app, ["info", "--model", str(iob_dir), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["precision"] in ("fp32", "bf16") and report["configured_precision"] == "auto"
    assert report["cpu"]["flags"] == list(cpu_info().flags) and "int8_family" in report["cpu"]
    assert report["labels"] == ["PER", "ORG", "LOC", "MISC"]
    text = CliRunner().invoke(app, ["info", "--model", str(iob_dir)])
    assert text.exit_code == 0 and "int8 kernels" in text.stdout


def test_int8_recipe_follows_the_kernels() -> None:
    from spacy_distilner.backends.onnx_export import Int8Recipe

    vnni, avx2 = Int8Recipe.for_cpu(kernels="vnni"), Int8Recipe.for_cpu(kernels="avx2")
    assert (vnni.weights, vnni.reduce_range) == ("s8", False)  # full 8-bit s8: u8s8 VNNI/AMX kernels
    assert (avx2.weights, avx2.reduce_range) == ("u8", False)
    assert Int8Recipe.for_cpu("s8", "avx2").reduce_range  # 7-bit against vpmaddubsw saturation
    assert Int8Recipe.for_cpu().kernels == cpu_info().int8_family
    assert Int8Recipe.for_cpu("u8", "vnni").as_dict()["kernels"] == "vnni"


def test_int8_graph_for_the_other_kernels_warns(iob_dir: Path, tmp_path: Path) -> None:
    import warnings

    here = cpu_info().int8_family
    other = "avx2" if here == "vnni" else "vnni"
    for kernels in (here, other):
        out = tmp_path / kernels
        result = CliRunner().invoke(
            app, ["export-onnx", str(iob_dir), str(out), "--precision", "int8", "--int8-kernels", kernels]
        )
        assert result.exit_code == 0, result.output
        report = json.loads((out / "validation.json").read_text())
        assert report["int8_recipe"]["kernels"] == kernels and report["cpu"]["int8_family"] == here
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            nlp = spacy.blank("en")
            nlp.add_pipe("distilner", config={"model": str(out), "backend": "onnx", "precision": "int8"})
            nlp("John Smith went to Paris.")
        assert any("W003" in str(w.message) for w in caught) == (kernels == other)


def test_update_refuses_bf16_weights(amx: None, iob_dir: Path) -> None:
    from spacy.training import Example

    from tiny import training_docs

    nlp, pipe = _pipe(iob_dir, "auto")
    nlp("warm up")  # loads with bf16 weights
    doc = training_docs(nlp, 1)[0]
    with pytest.raises(ValueError, match="D024"):
        pipe.update([Example(nlp.make_doc(doc.text), doc)])


def test_training_autocast_selection(amx: None) -> None:
    from spacy_distilner.backends import training_autocast

    assert training_autocast("torch", "auto", "cpu") and training_autocast("torch", "bf16", "cpu")
    assert not training_autocast("torch", "fp32", "cpu")
    assert not training_autocast("onnx", "auto", "cpu")


def test_training_autocast_is_off_without_native_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    from spacy_distilner.backends import training_autocast

    monkeypatch.setenv(FLAGS_ENV, "avx2")
    cpu_info.cache_clear()
    try:
        assert not training_autocast("torch", "auto", "cpu")
        assert training_autocast("torch", "auto", "cuda:0")
    finally:
        cpu_info.cache_clear()


def test_update_under_bf16_autocast_keeps_fp32_weights_and_learns(amx: None, iob_dir: Path) -> None:
    import torch
    from spacy.training import Example

    from tiny import training_docs

    nlp = spacy.blank("en")
    pipe = nlp.add_pipe("distilner", config={"model": str(iob_dir), "precision": "auto", "device": "cpu"})
    docs = training_docs(nlp, 4)
    examples = [Example(nlp.make_doc(d.text), d) for d in docs]
    optimizer = nlp.initialize(lambda: examples)
    before = pipe.hf_model.classifier.weight.detach().clone()
    losses = [nlp.update(examples, sgd=optimizer)["distilner"] for _ in range(8)]
    weight = pipe.hf_model.classifier.weight
    assert weight.dtype == torch.float32 and not torch.equal(weight, before)
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
