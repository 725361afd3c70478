"""PyTorch backend: fp32, or bf16 weights (the whole module in bf16; logits returned in fp32)."""

from __future__ import annotations

import os

import numpy as np
import torch


def _single_thread_after_fork() -> None:
    """Forked workers (``nlp.pipe(n_process=N)``) must not reuse the parent's OpenMP pool: it deadlocks."""
    torch.set_num_threads(1)


os.register_at_fork(after_in_child=_single_thread_after_fork)


class TorchBackend:
    """Runs a transformers token-classification module under ``torch.inference_mode``.

    ``precision="bf16"`` casts the module's weights to bf16 (not autocast: on AMX that is ~1.9x
    faster again); the logits are upcast to fp32 before anyone computes a softmax from them.
    """

    def __init__(self, module: torch.nn.Module, device: str = "cpu", precision: str = "fp32") -> None:
        self.module = module
        self.device = torch.device(device)
        self.precision = precision
        dtype = torch.bfloat16 if precision == "bf16" else None
        self.module.to(device=self.device, dtype=dtype) if dtype is not None else self.module.to(self.device)

    def forward(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        was_training = self.module.training
        self.module.eval()
        try:
            with torch.inference_mode():
                out = self.module(
                    input_ids=torch.from_numpy(input_ids).to(self.device),
                    attention_mask=torch.from_numpy(attention_mask).to(self.device),
                )
            return out.logits.float().cpu().numpy()
        finally:
            self.module.train(was_training)
