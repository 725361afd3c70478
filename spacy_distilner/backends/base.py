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
