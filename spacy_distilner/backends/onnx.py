"""ONNX Runtime backend: runs an exported token classifier (fp32, int8 or fp16 graph)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from ..errors import Errors

#: File name of each ONNX variant inside a model directory.
ONNX_FILES = {"fp32": "model.onnx", "int8": "model_int8.onnx", "fp16": "model_fp16.onnx"}
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


def providers_for_device(device: str) -> list[Any]:
    """Execution providers for a component ``device`` setting: ``auto``, ``cpu`` or ``cuda[:N]``."""
    import onnxruntime as ort  # imported on use: a torch-only run never loads it

    available = ort.get_available_providers()
    if device == "auto":
        return [CUDA, CPU] if CUDA in available else [CPU]
    kind, _, index = device.partition(":")
    if kind == "cpu":
        return [CPU]
    if kind == "cuda":
        if CUDA not in available:
            raise ValueError(Errors.D010.format(device=device, reason="onnxruntime has no CUDAExecutionProvider"))
        return [(CUDA, {"device_id": int(index or 0)}), CPU]
    raise ValueError(Errors.D009.format(what="device", value=device, options="auto, cpu, cuda[:N]"))


class OnnxBackend:
    """Runs an ONNX graph with inputs ``input_ids`` / ``attention_mask`` and output ``logits``."""

    def __init__(
        self, path: str | Path, num_threads: Optional[int] = None, providers: Optional[Sequence[Any]] = None
    ) -> None:
        """``providers=None``: CUDA when onnxruntime has it, else CPU; ``num_threads``: intra-op threads."""
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if num_threads:
            options.intra_op_num_threads = int(num_threads)
        self.path = Path(path)
        self.session = ort.InferenceSession(
            str(path), sess_options=options, providers=list(providers or providers_for_device("auto"))
        )

    def forward(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        feed = {
            "input_ids": np.ascontiguousarray(input_ids, dtype=np.int64),
            "attention_mask": np.ascontiguousarray(attention_mask, dtype=np.int64),
        }
        (logits,) = self.session.run(["logits"], feed)
        return np.asarray(logits, dtype=np.float32)
