"""``distilner export-onnx SRC OUT_DIR``: export a token classifier to ONNX, optimize, quantize, validate.

SRC is a spaCy pipeline directory (its first ``distilner`` component is exported), a shipped model name or a
token-classifier model directory. OUT_DIR receives a copy of the model directory plus
``model.onnx`` / ``model_int8.onnx`` / ``model_fp16.onnx``, so it can be used as the
component's ``model`` with ``backend = "onnx"``, and ``validation.json`` (``--report``): per variant the
max abs logit difference to PyTorch, the argmax agreement, whether the entity spans are
identical, the file size and the onnxruntime contrib ops in the graph.
"""

from __future__ import annotations

import json
import shutil
import time
from importlib.metadata import version
from pathlib import Path
from typing import Optional

import typer

from ..backends.onnx_export import ONNX_FILES, OUTLIER_RATIO, TEXTS, Int8Recipe, export_variants
from ..cpu import cpu_info
from ..errors import Errors
from ..export.onnx import fused_ops, validate
from ..loading import load_classifier, load_tokenizer, resolve_model_path

#: fp32 ONNX logits must be this close to PyTorch for the export to pass.
FP32_MAX_DIFF = 1e-3


def _model_dir_of(src: Path) -> Path:
    """The model directory of a pipeline's first ``distilner`` component, a shipped model's
    (``default``, ``en_conll03``, …), or ``src`` itself."""
    if not (src / "config.cfg").is_file():
        return src if src.exists() else resolve_model_path(str(src))
    from spacy.util import load_config

    from ..component import component_name
    from ..model_dir import MODEL_DIR

    try:
        return src / component_name(load_config(src / "config.cfg")) / MODEL_DIR
    except ValueError as err:
        raise typer.BadParameter(f"the spaCy pipeline '{src}': {err}") from err


def export_onnx(
    src: Path = typer.Argument(
        ..., help="spaCy pipeline directory, shipped model name or model directory.", metavar="SRC"
    ),
    out_dir: Path = typer.Argument(
        ..., help="Directory for the model copy, the ONNX files and the report.", metavar="OUT_DIR"
    ),
    precision: list[str] = typer.Option(["fp32", "int8", "fp16"], help="Variants to write (repeat the option)."),
    texts: Optional[Path] = typer.Option(None, help="UTF-8 file, one validation text per line (default: built-in)."),
    opset: int = typer.Option(17, help="ONNX opset."),
    per_channel: bool = typer.Option(True, help="Per-channel int8 weight scales (per-tensor loses accuracy)."),
    int8_weights: str = typer.Option(
        "auto", help="int8 weights: auto (s8 on VNNI/AMX CPUs, u8 on AVX2), u8 (u8u8 kernels) or s8 (u8s8 kernels)."
    ),
    int8_kernels: str = typer.Option("auto", help="CPU int8 kernels to make the graph for: auto (this CPU), vnni, avx2."),
    int8_exclude: list[str] = typer.Option([], help="Keep MatMuls whose name contains this in fp32 (repeat)."),
    int8_outliers: float = typer.Option(
        OUTLIER_RATIO, help="Keep Linears whose input max |x| exceeds this many std on the texts in fp32 (0: off)."
    ),
    report: str = typer.Option("validation.json", help="File name of the validation report in OUT_DIR."),
) -> None:
    """Export a model to ONNX, optimize, quantize and validate it.

    Writes the ONNX variants beside a copy of the model directory, and OUT_DIR/validation.json (exit 1 if
    fp32 differs from PyTorch).
    """
    unknown = sorted(set(precision) - set(ONNX_FILES))
    if unknown:
        raise typer.BadParameter(Errors.D009.format(what="precision", value=unknown[0], options=", ".join(ONNX_FILES)))
    if int8_weights not in ("auto", "u8", "s8"):
        raise typer.BadParameter(Errors.D009.format(what="int8 weights", value=int8_weights, options="auto, u8, s8"))
    if int8_kernels not in ("auto", "vnni", "avx2"):
        raise typer.BadParameter(Errors.D009.format(what="int8 kernels", value=int8_kernels, options="auto, vnni, avx2"))
    recipe = Int8Recipe.for_cpu(
        int8_weights,  # type: ignore[arg-type]
        None if int8_kernels == "auto" else int8_kernels,  # type: ignore[arg-type]
        per_channel=per_channel,
        exclude=tuple(int8_exclude),
        outlier_ratio=int8_outliers,
    )
    try:
        model_dir = _model_dir_of(src)
        hf_model, tokenizer = load_classifier(model_dir), load_tokenizer(model_dir)
    except ValueError as err:  # a coded error naming the broken file, not a traceback
        typer.echo(str(err), err=True)
        raise typer.Exit(1) from err
    sample = [t for t in texts.read_text(encoding="utf8").splitlines() if t.strip()] if texts else list(TEXTS)
    if "int8" in precision:
        recipe = recipe.calibrated(hf_model, tokenizer, sample)
    out_dir.mkdir(parents=True, exist_ok=True)
    if out_dir.resolve() != model_dir.resolve():
        shutil.copytree(model_dir, out_dir, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.onnx"))
    start = time.perf_counter()
    paths = export_variants(hf_model, out_dir, precision, opset, recipe)
    typer.echo(f"exported {', '.join(paths)} in {time.perf_counter() - start:.1f}s")
    variants = {}
    for name, path in paths.items():
        result = validate(path, hf_model, tokenizer, sample)
        result.update(file=path.name, size_mb=path.stat().st_size / 2**20, contrib_ops=fused_ops(path))
        variants[name] = result
    passed = "fp32" not in variants or (
        variants["fp32"]["max_abs_diff"] < FP32_MAX_DIFF and variants["fp32"]["spans_identical"]
    )
    record = {
        "source": str(src),
        "model_dir": str(model_dir),
        "opset": opset,
        "int8_recipe": recipe.as_dict(),
        "cpu": cpu_info().as_dict(),
        "versions": {"onnxruntime": version("onnxruntime"), "torch": version("torch")},
        "fp32_max_abs_diff_threshold": FP32_MAX_DIFF,
        "passed": passed,
        "variants": variants,
    }
    (out_dir / report).write_text(json.dumps(record, indent=2) + "\n")
    typer.echo(json.dumps(variants, indent=2))
    if not passed:
        typer.echo("validation FAILED", err=True)
        raise typer.Exit(1)
