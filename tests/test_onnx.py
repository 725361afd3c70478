"""ONNX export, quantization, the onnx backend and its serialization, on tiny random models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import numpy as np
import onnx
import pytest
import spacy
from spacy.language import Language

from spacy_distilner.backends import onnx as onnx_backend, onnx_export
from spacy_distilner.backends.onnx import ONNX_FILES, OnnxBackend
from spacy_distilner.export import onnx as export
from spacy_distilner.cli import app
from spacy_distilner.loading import load_classifier, load_tokenizer
from tiny import IOB2

TEXTS = [
    "John Smith went to New York with Apple in the United States today.",
    "Mary said the company in London was new.",
    "",
    "Paris, Germany and the world: people of the year!",
    " ".join(["Google said John went to Paris."] * 30),  # several 64-piece windows
]


@pytest.fixture(scope="module", autouse=True)
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Exports made by the component go to a per-module cache, not the user's."""
    path = tmp_path_factory.mktemp("onnx_cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DISTILNER_CACHE", str(path))
        yield path


@pytest.fixture(scope="module")
def variants(iob_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """fp32, int8 and fp16 exports of the tiny IOB2 model."""
    return onnx_export.export_variants(iob_dir, tmp_path_factory.mktemp("variants"), ("fp32", "int8", "fp16"))


def _pipeline(model: Path | str, **config: object) -> Language:
    nlp = spacy.blank("en")
    nlp.add_pipe("distilner", config={"model": str(model), **config})
    return nlp


def _ents(nlp: Language) -> list[list[tuple[int, int, str]]]:
    return [[(e.start, e.end, e.label_) for e in doc.ents] for doc in nlp.pipe(TEXTS)]


def test_fp32_export_matches_torch(iob_dir: Path, variants: dict[str, Path]) -> None:
    path = variants["fp32"]
    assert set(variants) == {"fp32", "int8", "fp16"}
    assert path.name == "model.onnx" and not list(path.parent.glob("*.raw.onnx"))
    graph = onnx.load(str(path)).graph
    assert [i.name for i in graph.input] == ["input_ids", "attention_mask"]
    assert [o.name for o in graph.output] == ["logits"]
    for value in (*graph.input, *graph.output):  # batch and sequence axes are symbolic
        assert all(d.dim_param for d in value.type.tensor_type.shape.dim[:2])
    assert {"Attention", "SkipLayerNormalization"} <= set(export.fused_ops(path))
    result = export.validate(path, load_classifier(iob_dir), load_tokenizer(iob_dir), TEXTS)
    assert result["max_abs_diff"] < 1e-4
    assert result["argmax_agreement"] == 1.0 and result["spans_identical"]
    assert result["texts"] == len(TEXTS) and result["pieces"] > 100


@pytest.mark.parametrize("precision,max_diff", [("int8", 2.0), ("fp16", 0.05)])
def test_reduced_precision_agrees(iob_dir: Path, variants: dict[str, Path], precision: str, max_diff: float) -> None:
    path = variants[precision]
    assert path.name == ONNX_FILES[precision]
    assert path.stat().st_size < variants["fp32"].stat().st_size
    graph = onnx.load(str(path)).graph
    types = [v.type.tensor_type.elem_type for v in (*graph.input, *graph.output)]
    assert types == [onnx.TensorProto.INT64, onnx.TensorProto.INT64, onnx.TensorProto.FLOAT]
    result = export.validate(path, load_classifier(iob_dir), load_tokenizer(iob_dir), TEXTS)
    assert result["argmax_agreement"] >= 0.9
    assert 0.0 < result["max_abs_diff"] < max_diff


def test_onnx_patterns_name_the_exported_nodes() -> None:
    assert onnx_export._onnx_pattern("distilbert.transformer.layer.1.ffn.lin2") == "layer.1/ffn/lin2/"
    assert onnx_export._onnx_pattern("distilbert.transformer.layer.11.attention.k_lin") == "Attention_11"
    assert onnx_export._onnx_pattern("distilbert.transformer.layer.0.attention.out_lin") == "layer.0/attention/out_lin/"
    assert onnx_export._onnx_pattern("classifier") == "classifier/"


def test_calibration_keeps_outlier_linears_in_fp32(iob_dir: Path, tmp_path: Path) -> None:
    """A Linear whose input has a massive activation on one token stays fp32: here "paris" gets a spike
    in one dimension, and one GELU unit of layer 0's FFN fires only on that spike."""
    import torch

    model, tokenizer = load_classifier(iob_dir), load_tokenizer(iob_dir)
    recipe = onnx_export.Int8Recipe(weights="s8", outlier_ratio=20.0)
    assert recipe.calibrated(model, tokenizer).exclude == ()  # the random model has none (its peaks: < 8 std)
    with torch.no_grad():
        word = tokenizer.convert_tokens_to_ids("paris")
        model.distilbert.embeddings.word_embeddings.weight[word] = 0.0
        model.distilbert.embeddings.word_embeddings.weight[word, 0] = 1000.0
        lin1 = model.distilbert.transformer.layer[0].ffn.lin1
        lin1.weight[3], lin1.bias[3] = 0.0, -300.0
        lin1.weight[3, 0] = 100.0
    calibrated = recipe.calibrated(model, tokenizer)  # the texts mention Paris
    assert calibrated.exclude == ("layer.0/ffn/lin2/",)
    assert onnx_export.Int8Recipe(weights="s8", outlier_ratio=0).calibrated(model, tokenizer).exclude == ()
    path = onnx_export.export_variants(model, tmp_path, ("int8",), int8=calibrated)["int8"]
    fp32 = [n.name for n in onnx.load(str(path)).graph.node if n.op_type == "MatMul"]
    assert fp32 == ["/distilbert/transformer/layer.0/ffn/lin2/MatMul"]
    assert calibrated.as_dict()["exclude"] == ["layer.0/ffn/lin2/"] and calibrated.as_dict()["outlier_ratio"] == 20.0


@pytest.mark.parametrize(
    "recipe,fp32_matmuls",
    [(onnx_export.Int8Recipe(weights="s8"), 0), (onnx_export.Int8Recipe(weights="u8", exclude=("ffn/lin2",)), 2)],
)
def test_int8_recipes(iob_dir: Path, tmp_path: Path, recipe: onnx_export.Int8Recipe, fp32_matmuls: int) -> None:
    """Only the requested variant is written (an fp32 graph already there is kept); excluded MatMuls stay fp32."""
    (tmp_path / "model.onnx").write_bytes(b"kept")
    path = onnx_export.export_variants(iob_dir, tmp_path, ("int8",), int8=recipe)["int8"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx", "model_int8.onnx"]
    assert (tmp_path / "model.onnx").read_bytes() == b"kept"
    assert "QAttention" in export.fused_ops(path)
    graph = onnx.load(str(path)).graph
    assert sum(n.op_type == "MatMul" and "lin2" in n.name for n in graph.node) == fp32_matmuls  # tiny model: 2 layers
    result = export.validate(path, load_classifier(iob_dir), load_tokenizer(iob_dir), TEXTS)
    assert result["argmax_agreement"] >= 0.9


def test_backend_protocol(variants: dict[str, Path]) -> None:
    backend = OnnxBackend(variants["fp32"], num_threads=1)
    assert backend.session.get_providers()[-1] == "CPUExecutionProvider"
    ids = np.array([[2, 40, 41, 3, 0], [2, 42, 3, 0, 0]], dtype=np.int32)  # other int types are converted
    logits = backend.forward(ids, (ids > 0).astype(np.int64))
    assert logits.shape == (2, 5, len(IOB2)) and logits.dtype == np.float32


def test_component_onnx_matches_torch(iob_dir: Path, onnx_cache: Path) -> None:
    torch_nlp, onnx_nlp = _pipeline(iob_dir, precision="fp32"), _pipeline(iob_dir, backend="onnx")  # fp32 both
    pipe = onnx_nlp.get_pipe("distilner")
    assert _ents(onnx_nlp) == _ents(torch_nlp)
    assert isinstance(pipe._backend, OnnxBackend) and pipe._backend.path.is_relative_to(onnx_cache)
    for a, b in zip(torch_nlp.pipe(TEXTS), onnx_nlp.pipe(TEXTS)):
        np.testing.assert_allclose(a._.ner_probs, b._.ner_probs, atol=1e-5)
        np.testing.assert_allclose(a._.ner_logits, b._.ner_logits, atol=1e-4)
    assert type(pipe.hf_model).__name__ == "DistilBertForTokenClassification" and pipe.hf_tokenizer.is_fast
    multi = [d._.ner_probs for d in onnx_nlp.pipe(TEXTS, n_process=2, batch_size=2)]  # forked sessions
    for a, b in zip(multi, onnx_nlp.pipe(TEXTS)):
        np.testing.assert_allclose(a, b._.ner_probs, atol=1e-6)


@pytest.mark.parametrize("precision", ["int8", "fp16"])
def test_component_reduced_precision(iob_dir: Path, precision: str) -> None:
    torch_docs = list(_pipeline(iob_dir).pipe(TEXTS))
    onnx_nlp = _pipeline(iob_dir, backend="onnx", precision=precision, num_threads=1)
    agree = total = 0
    for a, b in zip(torch_docs, onnx_nlp.pipe(TEXTS)):
        np.testing.assert_allclose(b._.ner_probs.sum(-1), 1.0, rtol=1e-5)
        agree += int((a._.ner_probs.argmax(-1) == b._.ner_probs.argmax(-1)).sum())
        total += len(a)
    assert agree >= 0.9 * total
    assert onnx_nlp.get_pipe("distilner")._backend.path.name == ONNX_FILES[precision]


def test_round_trip_uses_stored_onnx(iob_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nlp = _pipeline(iob_dir, backend="onnx", precision="int8")
    expected = [d._.ner_probs for d in nlp.pipe(TEXTS)]
    nlp.to_disk(tmp_path / "pipe")
    saved = tmp_path / "pipe" / "distilner" / "model"
    assert (saved / "model_int8.onnx").is_file() and (saved / "model.safetensors").is_file()
    assert not (saved / "model.onnx").exists()

    def no_export(*args: object, **kwargs: object) -> None:
        raise AssertionError("exported again")

    monkeypatch.setattr(onnx_backend, "cached_export", no_export)
    loaded = spacy.load(tmp_path / "pipe")
    pipe = loaded.get_pipe("distilner")
    assert pipe.cfg["backend"] == "onnx" and pipe._backend.path == saved / "model_int8.onnx"
    for a, b in zip(expected, loaded.pipe(TEXTS)):
        np.testing.assert_array_equal(a, b._.ner_probs)
    loaded.to_disk(tmp_path / "pipe")  # saving over the directory it was loaded from
    assert (saved / "model_int8.onnx").stat().st_size > 0


def test_bytes_round_trip_owns_the_unpacked_files(iob_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pipeline loaded from bytes runs the unpacked graph, keeps it (and the weights) while it lives, saves
    from it without exporting again, and the files go with it."""
    import gc

    nlp = _pipeline(iob_dir, backend="onnx")
    expected = nlp(TEXTS[0])._.ner_probs
    copy = _pipeline("does-not-matter", backend="onnx")
    copy.get_pipe("distilner").from_bytes(nlp.get_pipe("distilner").to_bytes())
    path = copy.get_pipe("distilner")._backend.path
    assert path.is_file() and path.parent.name == "model"

    def no_export(*args: object, **kwargs: object) -> None:
        raise AssertionError("exported again")

    monkeypatch.setattr(onnx_backend, "cached_export", no_export)
    again = _pipeline("does-not-matter", backend="onnx")
    again.get_pipe("distilner").from_bytes(copy.get_pipe("distilner").to_bytes())
    np.testing.assert_allclose(again(TEXTS[0])._.ner_probs, expected, atol=1e-6)
    del copy
    gc.collect()
    assert not path.exists()


def test_onnx_runs_and_saves_without_the_torch_module(
    iob_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With its graph at hand, an ONNX pipeline never reads the torch module (annotating, to_bytes,
    from_bytes, to_disk); ``hf_model`` reads it on demand."""
    from transformers import AutoModelForTokenClassification

    expected = _ents(_pipeline(iob_dir, backend="onnx"))  # exports into the cache

    def no_module(*args: object, **kwargs: object) -> None:
        raise AssertionError("read the torch module")

    monkeypatch.setattr(AutoModelForTokenClassification, "from_pretrained", no_module)
    nlp = _pipeline(iob_dir, backend="onnx")
    copy = _pipeline("does-not-matter", backend="onnx")
    copy.get_pipe("distilner").from_bytes(nlp.get_pipe("distilner").to_bytes())
    copy.to_disk(tmp_path / "pipe")
    assert _ents(nlp) == _ents(copy) == _ents(spacy.load(tmp_path / "pipe")) == expected
    monkeypatch.undo()
    assert type(copy.get_pipe("distilner").hf_model).__name__ == "DistilBertForTokenClassification"


@pytest.mark.parametrize("source", ["model_dir", "pipeline"])
def test_cli_writes_a_usable_model_dir(iob_dir: Path, tmp_path: Path, source: str) -> None:
    from typer.testing import CliRunner

    src = iob_dir
    if source == "pipeline":
        src = tmp_path / "pipe"
        _pipeline(iob_dir).to_disk(src)
    args = ["export-onnx", str(src), str(tmp_path / "out"), "--precision", "fp32", "--precision", "int8"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "out" / "validation.json").read_text())
    assert record["passed"] and set(record["variants"]) == {"fp32", "int8"}
    fp32 = record["variants"]["fp32"]
    assert fp32["max_abs_diff"] < 1e-4 and fp32["spans_identical"] and fp32["size_mb"] > 0
    assert not (tmp_path / "out" / "model_fp16.onnx").exists()
    pipe = _pipeline(tmp_path / "out", backend="onnx").get_pipe("distilner")
    pipe.predict([])
    assert pipe._backend.path == tmp_path / "out" / "model.onnx"


@pytest.mark.parametrize("backend,precision", [("torch", "int8"), ("torch", "fp16"), ("onnx", "bf16")])
def test_invalid_backend_precision(iob_dir: Path, backend: str, precision: str) -> None:
    with pytest.raises(ValueError, match="D018.*bf16 runs on torch"):
        _pipeline(iob_dir, backend=backend, precision=precision)


def test_unknown_backend_and_device() -> None:
    from spacy_distilner import DistilNER
    from spacy_distilner.backends.onnx import providers_for_device

    with pytest.raises(ValueError, match="D009.*backend"):
        DistilNER(spacy.blank("en").vocab, backend="tensorrt")
    with pytest.raises(ValueError, match="D009.*device"):
        providers_for_device("mps")
    assert providers_for_device("cpu") == ["CPUExecutionProvider"]
