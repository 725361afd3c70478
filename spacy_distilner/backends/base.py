"""The one interface every backend implements, and device selection."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from ..errors import Errors


class Backend(Protocol):
    """Runs the token classifier: ``(rows, length)`` ids and mask -> ``(rows, length, n_tags)`` float32 logits."""

    def forward(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray: ...


def resolve_device(device: str) -> str:
    """Map ``"auto"`` to CUDA, then MPS, then CPU; check that an explicit device exists."""
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            return "cuda:0"
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    kind = device.split(":")[0]
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(Errors.D010.format(device=device, reason="torch sees no CUDA device"))
    if kind == "mps" and not torch.backends.mps.is_available():
        raise ValueError(Errors.D010.format(device=device, reason="MPS is not available"))
    if kind not in ("cpu", "cuda", "mps"):
        raise ValueError(Errors.D009.format(what="device", value=device, options="auto, cpu, cuda[:N], mps"))
    return device


def resolve_precision(backend: str, precision: str, device: str, training: bool = False) -> str:
    """The precision a backend runs: ``auto`` is bf16 weights on CUDA and on CPUs with native bf16
    (AMX or AVX512-BF16), fp32 elsewhere (and always fp32 for training and for ONNX); an explicit
    ``bf16`` on a CPU without native bf16 warns (W001) and runs fp32, which is faster there."""
    import warnings

    from ..cpu import cpu_info

    if backend != "torch":
        return "fp32" if precision == "auto" else precision
    native = device.startswith("cuda") or (device == "cpu" and cpu_info().native_bf16)
    if precision == "auto":
        return "bf16" if native and not training else "fp32"
    if precision == "bf16" and device == "cpu" and not native:
        warnings.warn(Errors.W001)
        return "fp32"
    return precision


def training_autocast(backend: str, precision: str, device: str) -> bool:
    """Whether training runs its forward pass under bf16 autocast (fp32 master weights): with
    ``auto`` or ``bf16`` where bf16 is native (CUDA, AMX or AVX512-BF16), never with ``fp32``."""
    from ..cpu import cpu_info

    if backend != "torch" or precision not in ("auto", "bf16"):
        return False
    return device.startswith("cuda") or (device == "cpu" and cpu_info().native_bf16)
