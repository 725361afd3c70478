"""PyTorch backend: fp32, or bf16 weights (the whole module in bf16; logits returned in fp32)."""

from __future__ import annotations

import os
from typing import Any, Callable, Optional

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


def _thinc_inputs(model: Any, inputs: tuple[np.ndarray, np.ndarray], is_train: bool) -> tuple[Any, Callable]:
    """thinc -> torch: ``(input_ids, attention_mask)`` numpy arrays as keyword tensors on the module's device."""
    from thinc.api import ArgsKwargs

    device = next(model.shims[0]._model.parameters()).device
    ids, mask = (torch.from_numpy(a).to(device) for a in inputs)
    return ArgsKwargs(args=(), kwargs={"input_ids": ids, "attention_mask": mask}), lambda d: None


def _thinc_outputs(model: Any, inputs_outputs: tuple[Any, Any], is_train: bool) -> tuple[np.ndarray, Callable]:
    """torch -> thinc: float32 numpy logits, and the backward pass from their gradient (in the logits' dtype)."""
    from thinc.api import ArgsKwargs

    logits = inputs_outputs[1].logits

    def backprop(d_logits: np.ndarray) -> Any:
        grad = torch.from_numpy(np.ascontiguousarray(d_logits, dtype=np.float32)).to(logits.device, logits.dtype)
        return ArgsKwargs(args=(logits,), kwargs={"grad_tensors": (grad,)})

    return logits.detach().float().cpu().numpy(), backprop


def thinc_model(module: torch.nn.Module, device: Optional[str] = None) -> Any:
    """The module as a thinc ``Model`` (spaCy's training loop updates components through it).

    ``device`` keeps the module where the backend runs (thinc would move it to its own default).
    """
    from thinc.api import PyTorchWrapper_v2

    return PyTorchWrapper_v2(
        module,
        convert_inputs=_thinc_inputs,
        convert_outputs=_thinc_outputs,
        device=torch.device(device) if device else None,
    )
