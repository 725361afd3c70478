"""Check an exported ONNX graph against PyTorch, and count its fused and quantized ops (the export CLI's report).

The export itself is ``backends.onnx_export``, which the ONNX backend calls when its graph is missing.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import numpy as np

from ..backends.onnx import OnnxBackend
from ..decode import TagSet, decode
from ..tokenize import model_limit

_VALIDATE_BATCH = 16


def fused_ops(onnx_path: str | Path) -> dict[str, int]:
    """Counts of onnxruntime contrib ops (``com.microsoft`` domain: fused or quantized) in a graph."""
    import onnx

    graph = onnx.load(str(onnx_path)).graph
    return dict(Counter(node.op_type for node in graph.node if node.domain == "com.microsoft"))


def _piece_spans(logits: np.ndarray, mask: np.ndarray, tagset: TagSet) -> list[list[tuple[int, int, str]]]:
    return [decode(row.argmax(-1)[m.astype(bool)], tagset) for row, m in zip(logits, mask)]


def validate(
    onnx_path: str | Path,
    hf_model: Any,
    tokenizer: Any,
    texts: Iterable[str],
    providers: Optional[Sequence[Any]] = None,
) -> dict[str, Any]:
    """Compare onnxruntime logits with fp32 PyTorch on ``texts`` (truncated to one window each).

    ``providers``: onnxruntime execution providers (default: CUDA if available, else CPU);
    PyTorch runs on the module's device.

    Returns ``max_abs_diff`` (over real pieces), ``argmax_agreement`` (fraction of real pieces
    with the same top tag), ``spans_identical`` (entity spans decoded from the piece tags,
    special pieces included) and the counts of ``texts`` and ``pieces``.
    """
    from ..backends.torch import TorchBackend

    texts = list(texts)
    session = OnnxBackend(onnx_path, providers=providers)
    reference = TorchBackend(hf_model, device=str(next(hf_model.parameters()).device))
    tagset = TagSet.from_config(hf_model.config)
    limit = model_limit(hf_model, tokenizer)
    max_diff, agree, pieces, spans_identical = 0.0, 0, 0, True
    for start in range(0, len(texts), _VALIDATE_BATCH):
        enc = tokenizer(
            texts[start : start + _VALIDATE_BATCH], padding=True, truncation=True, max_length=limit, return_tensors="np"
        )
        ids, mask = enc["input_ids"].astype(np.int64), enc["attention_mask"].astype(np.int64)
        expected, got = reference.forward(ids, mask), session.forward(ids, mask)
        real = mask.astype(bool)
        max_diff = max(max_diff, float(np.abs(expected - got)[real].max(initial=0.0)))
        agree += int((expected.argmax(-1) == got.argmax(-1))[real].sum())
        pieces += int(real.sum())
        spans_identical &= _piece_spans(expected, mask, tagset) == _piece_spans(got, mask, tagset)
    return {
        "max_abs_diff": max_diff,
        "argmax_agreement": agree / pieces if pieces else 1.0,
        "spans_identical": spans_identical,
        "texts": len(texts),
        "pieces": pieces,
    }
