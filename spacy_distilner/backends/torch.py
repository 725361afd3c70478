"""PyTorch backend: fp32, or bf16 under autocast."""

from __future__ import annotations

import contextlib
import os

import numpy as np
import torch


def _single_thread_after_fork() -> None:
    """Forked workers (``nlp.pipe(n_process=N)``) must not reuse the parent's OpenMP pool: it deadlocks."""
    torch.set_num_threads(1)


os.register_at_fork(after_in_child=_single_thread_after_fork)


def cpu_supports_bf16() -> bool:
    """True when oneDNN has native bf16 kernels on this CPU (AVX512-BF16 or AMX)."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


class TorchBackend:
    """Runs a transformers token-classification module under ``torch.inference_mode``."""

    def __init__(self, module: torch.nn.Module, device: str = "cpu", precision: str = "fp32") -> None:
        self.module = module
        self.device = torch.device(device)
        self.precision = precision
        self.module.to(self.device)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.precision == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def forward(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        was_training = self.module.training
        self.module.eval()
        try:
            with torch.inference_mode(), self._autocast():
                out = self.module(
                    input_ids=torch.from_numpy(input_ids).to(self.device),
                    attention_mask=torch.from_numpy(attention_mask).to(self.device),
                )
            return out.logits.float().cpu().numpy()
        finally:
            self.module.train(was_training)
