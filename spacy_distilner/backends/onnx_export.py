"""Export a transformers token classifier to ONNX, optimize and quantize it; the cached export.

Used when a model is exported: by the ONNX backend when the graph it runs is missing (once, into
the cache), and by the export CLI. Inference with a stored graph needs only ``backends.onnx``.
Everything written is ``.onnx`` (protobuf); nothing is pickled.
"""

from __future__ import annotations

import copy
import hashlib
import os
import tempfile
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, Optional, Sequence

from ..cache import cache_dir, write_cached
from ..cpu import Int8Family
from ..loading import load_classifier
from ..tokenize import model_limit
from .weights import Weights

#: File name of each ONNX variant inside a model directory.
ONNX_FILES = {"fp32": "model.onnx", "int8": "model_int8.onnx", "fp16": "model_fp16.onnx"}

INPUT_NAMES = ("input_ids", "attention_mask")
OUTPUT_NAMES = ("logits",)
_DYNAMIC_AXES = {name: {0: "batch", 1: "sequence"} for name in INPUT_NAMES + OUTPUT_NAMES}
#: Validation and calibration texts (``export-onnx --texts`` replaces them).
TEXTS = (
    "John Smith flew from London to New York on Tuesday to meet executives of Apple Inc.",
    "The European Union and the United Nations met in Geneva, Switzerland, last week.",
    "Angela Merkel, the former German chancellor, visited Paris with Emmanuel Macron.",
    "Google announced that Sundar Pichai will speak at Stanford University in California.",
    "Manchester United beat Real Madrid 2-1 at Old Trafford, said the BBC.",
    "no entities here, just lowercase words and numbers 1 2 3.",
)
#: int8 keeps a Linear in fp32 when its input's max |x| exceeds this many standard deviations:
#: dynamic quantization gives each activation tensor one scale, so such outliers leave the bulk
#: of the values one or two steps (the default model: FFN outputs of layers 1-4, 103-122 std).
OUTLIER_RATIO = 100.0


def _as_model(model: str | Path | Any) -> Any:
    """A directory -> the token classifier stored there; a module is returned as is."""
    if isinstance(model, (str, Path)):
        return load_classifier(Path(model))
    return model


def _traceable(hf_model: Any) -> Any:
    """``hf_model``, or a copy of it with eager attention where transformers can switch it
    (``set_attn_implementation``, transformers 5): its sdpa attention traces into a graph whose
    attention onnxruntime's fusions do not find (transformers 4.53's sdpa traces into one they do)."""
    if not hasattr(hf_model, "set_attn_implementation"):
        return hf_model
    eager = copy.deepcopy(hf_model)
    eager.set_attn_implementation("eager")
    return eager


def export_onnx(model: str | Path | Any, out_path: str | Path, opset: int = 17, optimize_graph: bool = True) -> Path:
    """Export a token classifier (directory or module) to ``out_path`` with dynamic batch and length axes.

    Inputs are int64 ``input_ids`` / ``attention_mask`` ``(batch, sequence)``, the output float32
    ``logits`` ``(batch, sequence, n_tags)``. With ``optimize_graph`` the transformer fusions
    of onnxruntime are applied when they find something to fuse.
    """
    import torch

    hf_model = _traceable(_as_model(model))
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    device = next(hf_model.parameters()).device
    dummy = torch.ones((2, 8), dtype=torch.int64, device=device)
    raw = out_path.with_name(out_path.stem + ".raw.onnx")
    with warnings.catch_warnings():  # the TorchScript exporter's deprecation and tracer notices
        warnings.simplefilter("ignore")
        torch.onnx.export(
            hf_model,
            (),
            str(raw),
            kwargs={"input_ids": dummy, "attention_mask": dummy},
            input_names=list(INPUT_NAMES),
            output_names=list(OUTPUT_NAMES),
            dynamic_axes=_DYNAMIC_AXES,
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,  # the torch.export-based exporter needs onnxscript, not a dependency here
        )
    config = hf_model.config
    if optimize_graph and optimize(raw, out_path, int(config.num_attention_heads), int(config.hidden_size)):
        raw.unlink()
    else:
        os.replace(raw, out_path)
    return out_path


def optimize(src: str | Path, dst: str | Path, num_heads: int, hidden_size: int) -> dict[str, int]:
    """Fuse attention, embedding and layer-norm subgraphs (onnxruntime's ``bert`` optimizer) into ``dst``.

    Returns the fused-op counts; when nothing was fused, ``dst`` is not written and ``{}`` is returned.
    """
    from onnxruntime.transformers.optimizer import optimize_model

    optimized = optimize_model(
        str(src), model_type="bert", num_heads=num_heads, hidden_size=hidden_size, opt_level=0, use_gpu=False
    )
    fused = {op: n for op, n in optimized.get_fused_operator_statistics().items() if n}
    if fused:
        optimized.save_model_to_file(str(dst), use_external_data_format=False)
    return fused


@dataclass(frozen=True)
class Int8Recipe:
    """How dynamic int8 quantization treats the weights, chosen for a CPU's int8 kernels.

    ``weights="s8"`` runs u8s8 kernels: on CPUs with VNNI/AMX (``kernels="vnni"``) with full
    8-bit weights (5,786 pieces/s against 2,062 with u8 weights on a Xeon with AMX, batch 8 × 256);
    without VNNI (``kernels="avx2"``) ``vpmaddubsw`` saturates unless weights use 7 bits
    (``reduce_range``). ``"u8"`` runs u8u8 kernels with full 8-bit asymmetric weights: the fast
    choice on AVX2 (1.80× the HF pipeline here). ``exclude``: substrings of MatMul node names kept
    in fp32 (e.g. ``"ffn/lin2"``); :meth:`calibrated` adds the Linears with outlier inputs.
    Per-tensor scales broke the CoNLL model on an AVX2 CPU (F1 0.02); per-channel is the default.
    """

    weights: Literal["s8", "u8"] = "u8"
    per_channel: bool = True
    exclude: tuple[str, ...] = ()
    kernels: Int8Family = "avx2"  # the kernel family the recipe is made for
    outlier_ratio: float = OUTLIER_RATIO  # 0: quantize every MatMul not in ``exclude``

    @property
    def reduce_range(self) -> bool:
        return self.weights == "s8" and self.kernels == "avx2"

    @classmethod
    def for_cpu(
        cls, weights: Literal["auto", "s8", "u8"] = "auto", kernels: Optional[Int8Family] = None, **options: Any
    ) -> "Int8Recipe":
        """The recipe for ``kernels`` (default: this CPU's): s8 on VNNI/AMX, u8 on AVX2, unless ``weights`` is forced."""
        from ..cpu import cpu_info

        family = kernels or cpu_info().int8_family
        chosen = ("s8" if family == "vnni" else "u8") if weights == "auto" else weights
        return cls(weights=chosen, kernels=family, **options)

    def calibrated(self, hf_model: Any, tokenizer: Any, texts: Sequence[str] = TEXTS) -> "Int8Recipe":
        """This recipe with the Linears whose inputs exceed ``outlier_ratio`` std on ``texts`` kept in fp32."""
        if not self.outlier_ratio:
            return self
        limit = model_limit(hf_model, tokenizer)
        ids = [tokenizer(t, truncation=True, max_length=limit)["input_ids"] for t in texts]
        found = outlier_matmuls(hf_model, ids, self.outlier_ratio)
        return replace(self, exclude=tuple(dict.fromkeys(self.exclude + found)))

    def as_dict(self) -> dict[str, Any]:
        return {
            "weights": self.weights, "per_channel": self.per_channel, "reduce_range": self.reduce_range,
            "exclude": list(self.exclude), "kernels": self.kernels, "outlier_ratio": self.outlier_ratio,
        }


def _onnx_pattern(module_name: str) -> str:
    """The exported node name pattern of a Linear: ``…layer.1.ffn.lin2`` -> ``layer.1/ffn/lin2/``;
    q/k/v of layer N are fused into ``Attention_N``."""
    parts = module_name.split(".")
    if "layer" not in parts:
        return f"{parts[-1]}/"
    at = parts.index("layer")
    if parts[-1] in ("q_lin", "k_lin", "v_lin"):
        return f"Attention_{parts[at + 1]}"
    return "/".join([f"layer.{parts[at + 1]}", *parts[at + 2 :]]) + "/"


def outlier_matmuls(hf_model: Any, input_ids: Sequence[Sequence[int]], ratio: float = OUTLIER_RATIO) -> tuple[str, ...]:
    """Node-name patterns of the Linears whose input max |x| exceeds ``ratio`` std on any of ``input_ids``."""
    import torch

    peaks: dict[str, float] = {}

    def watch(name: str) -> Any:
        def hook(module: Any, inputs: tuple, output: Any) -> None:
            x = inputs[0].detach().float()
            peaks[name] = max(peaks.get(name, 0.0), float(x.abs().max() / x.std().clamp_min(1e-12)))

        return hook

    linears = [(n, m) for n, m in hf_model.named_modules() if isinstance(m, torch.nn.Linear)]
    handles = [m.register_forward_hook(watch(n)) for n, m in linears]
    was_training = hf_model.training
    hf_model.eval()
    try:
        with torch.inference_mode():
            for ids in input_ids:
                hf_model(input_ids=torch.tensor([list(ids)], device=hf_model.device))
    finally:
        hf_model.train(was_training)
        for handle in handles:
            handle.remove()
    return tuple(dict.fromkeys(_onnx_pattern(n) for n, _ in linears if peaks.get(n, 0.0) > ratio))


def _matmuls(src: str | Path, patterns: Sequence[str]) -> list[str]:
    import onnx

    graph = onnx.load(str(src), load_external_data=False).graph
    return [n.name for n in graph.node if n.op_type in ("MatMul", "Attention") and any(p in n.name for p in patterns)]


def quantize_dynamic_int8(src: str | Path, dst: str | Path, recipe: Optional[Int8Recipe] = None) -> Path:
    """Dynamic quantization: int8 weights, activations quantized at run time (CPU); default: this CPU's recipe."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    recipe = recipe or Int8Recipe.for_cpu()
    quantize_dynamic(
        str(src),
        str(dst),
        weight_type=QuantType.QUInt8 if recipe.weights == "u8" else QuantType.QInt8,
        per_channel=recipe.per_channel,
        reduce_range=recipe.reduce_range,
        nodes_to_exclude=_matmuls(src, recipe.exclude) if recipe.exclude else None,
        # ONNX shape inference cannot type the outputs of fused contrib ops (Attention, …)
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    return Path(dst)


def convert_fp16(src: str | Path, dst: str | Path) -> Path:
    """fp16 weights and activations; inputs (int64) and ``logits`` (float32) keep their types."""
    import onnx
    from onnxruntime.transformers.onnx_model import OnnxModel

    model = OnnxModel(onnx.load(str(src)))
    model.convert_float_to_float16(keep_io_types=True)
    model.save_model_to_file(str(dst), use_external_data_format=False)
    return Path(dst)


def export_variants(
    model: str | Path | Any,
    out_dir: str | Path,
    precisions: Sequence[str] = ("fp32",),
    opset: int = 17,
    int8: Optional[Int8Recipe] = None,
) -> dict[str, Path]:
    """Write ``model.onnx`` / ``model_int8.onnx`` / ``model_fp16.onnx`` for ``precisions`` into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:  # the fp32 graph, when only derived ones are wanted
        fp32 = export_onnx(model, (out_dir if "fp32" in precisions else Path(tmp)) / ONNX_FILES["fp32"], opset)
        if "fp32" in precisions:
            paths["fp32"] = fp32
        if "int8" in precisions:
            paths["int8"] = quantize_dynamic_int8(fp32, out_dir / ONNX_FILES["int8"], int8)
        if "fp16" in precisions:
            paths["fp16"] = convert_fp16(fp32, out_dir / ONNX_FILES["fp16"])
    return paths


def _fingerprint(weights_digest: str, precision: str, opset: int) -> str:
    """Hash of the weights (``Weights.digest``), the recipe and the tool versions: equal fingerprints give equal exports."""
    import onnxruntime
    import torch

    recipe = f"{precision}|{opset}|{Int8Recipe.for_cpu()}|{torch.__version__}|{onnxruntime.__version__}"
    return hashlib.sha256(f"{recipe}|{weights_digest}".encode()).hexdigest()[:32]


def _export_bytes(hf_model: Any, precision: str) -> int:
    """About the disk space an export needs at its peak: the raw and the optimized fp32 graph, and the derived one."""
    n_params = sum(p.numel() for p in hf_model.parameters())
    return n_params * (8 + {"fp32": 0, "int8": 1, "fp16": 2}[precision])


def cached_export(weights: Weights, tokenizer: Any, precision: str, opset: int = 17) -> Path:
    """The ONNX file of ``weights`` at ``precision``, exported once into the cache (keyed by content;
    where the cache cannot take it, into a temporary directory for this process: ``cache.write_cached``);
    int8 is calibrated with ``tokenizer`` (outlier Linears stay fp32). The torch module is read only
    to export, and not kept."""
    key, name = f"onnx/{_fingerprint(weights.digest(), precision, opset)}", ONNX_FILES[precision]
    if (cache_dir() / key / name).is_file():  # a read-only cache still serves what it holds
        return cache_dir() / key / name
    hf_model = weights.transient_module()

    def export(folder: Path) -> Path:
        target = folder / name
        if not target.is_file():
            with tempfile.TemporaryDirectory(dir=folder) as tmp:  # atomic: concurrent exports do not clash
                recipe = Int8Recipe.for_cpu().calibrated(hf_model, tokenizer) if precision == "int8" else None
                os.replace(export_variants(hf_model, tmp, (precision,), opset, recipe)[precision], target)
        return target

    return write_cached(key, export, "ONNX export", _export_bytes(hf_model, precision))
