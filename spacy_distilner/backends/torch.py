"""PyTorch backend: fp32, or bf16 weights (the whole module in bf16; logits returned in fp32)."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, Callable, ClassVar, Optional

import numpy as np
import torch

from ..errors import Errors
from ..loading import load_classifier, save_weights
from ..settings import Settings
from .base import Described, training_autocast


def _single_thread_after_fork() -> None:
    """Forked workers (``nlp.pipe(n_process=N)``) must not reuse the parent's OpenMP pool: it deadlocks."""
    torch.set_num_threads(1)


@functools.cache
def _cap_threads_in_forked_children() -> None:
    """Once per process: every child forked after this runs torch on one thread (``os.register_at_fork``)."""
    os.register_at_fork(after_in_child=_single_thread_after_fork)


class TorchBackend(Described):
    """Runs a transformers token-classification module under ``torch.inference_mode``.

    ``precision="bf16"`` casts the module's weights to bf16 (not autocast: on AMX that is ~1.9x
    faster again); the logits are upcast to fp32 before anyone computes a softmax from them.
    ``save`` writes the module as held (bf16 weights stay bf16). The first TorchBackend of a
    process makes every child forked after it (``nlp.pipe(n_process=N)``) run torch on one thread.
    """

    name: ClassVar[str] = "torch"
    trainable: ClassVar[bool] = True

    def __init__(self, module: torch.nn.Module, device: str = "cpu", precision: str = "fp32") -> None:
        _cap_threads_in_forked_children()
        self.module = module
        self.device = str(torch.device(device))
        self.precision = precision
        dtype = torch.bfloat16 if precision == "bf16" else None
        self.module.to(device=self.device, dtype=dtype) if dtype is not None else self.module.to(self.device)

    @classmethod
    def load(
        cls, path: Path, settings: Settings, tokenizer: Any, runtime: tuple[str, str], owner: Any = None
    ) -> "TorchBackend":
        """The module stored in ``path``, read straight into bf16 where it runs so (``owner`` is not needed)."""
        device, precision = runtime
        return cls(load_classifier(path, "bf16" if precision == "bf16" else None), device, precision)

    @classmethod
    def from_module(cls, module: Any, tokenizer: Any, settings: Settings, runtime: tuple[str, str]) -> "TorchBackend":
        return cls(module, *runtime)

    @property
    def config(self) -> Any:
        return self.module.config

    def save(self, path: Path) -> None:
        save_weights(path, self.module)

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


def _training_forward(model: Any, inputs: tuple[np.ndarray, np.ndarray], is_train: bool) -> tuple[np.ndarray, Callable]:
    """The wrapped module's forward pass, under bf16 autocast where ``attrs["autocast"]`` (its backward
    pass is not); a module with bf16 weights is refused (D024)."""
    if model.attrs["bf16_weights"]:
        raise ValueError(Errors.D024.format(precision=model.attrs["precision"]))
    with torch.autocast(model.attrs["device_type"], dtype=torch.bfloat16, enabled=model.attrs["autocast"]):
        return model.layers[0](inputs, is_train)


def thinc_model(backend: Any, precision: str) -> Optional[Any]:
    """The module a trainable backend runs, as a thinc ``Model`` on the backend's device (None for a
    backend that is not trainable): ``(input_ids, attention_mask)`` -> ``(rows, length, n_tags)``
    float32 logits, and the backward pass from their gradient.

    ``precision``: the configured precision; with ``auto`` or ``bf16`` where bf16 is native, forward
    passes run under bf16 autocast (``training_autocast``).
    """
    from thinc.api import Model, PyTorchWrapper_v2

    if not backend.trainable:
        return None
    device = torch.device(backend.device)  # where the backend runs it (thinc would move it to its own default)
    convert = {"convert_inputs": _thinc_inputs, "convert_outputs": _thinc_outputs}
    wrapper = PyTorchWrapper_v2(backend.module, device=device, **convert)
    attrs = {
        "autocast": training_autocast("torch", precision, backend.device),
        "device_type": device.type,
        "precision": precision,
        "bf16_weights": backend.precision == "bf16",
    }
    return Model("distilner_torch", _training_forward, layers=[wrapper], attrs=attrs)


def _same_memory(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two contiguous arrays are the same bytes."""
    contiguous = a.flags.c_contiguous and b.flags.c_contiguous
    return contiguous and a.nbytes == b.nbytes and a.ctypes.data == b.ctypes.data


def apply_optimizer(model: Any, sgd: Any, lr_scale_for: Callable[[str], float]) -> None:
    """One step of the thinc optimizer ``sgd`` on every parameter with a gradient (frozen ones have none)
    of the module ``model`` (a :func:`thinc_model`) wraps, keyed by its torch shim and the parameter's
    name, at ``lr_scale_for(name)``; the gradients are zero after.

    CPU fp32 parameters and gradients go to the optimizer as numpy views of their own memory, which
    thinc's optimizers update in place (an array returned elsewhere is copied back); parameters on
    other devices or in other dtypes go through numpy copies.
    """
    shim = model.layers[0].shims[0]
    for name, param in shim._model.named_parameters():
        if param.grad is None:
            continue
        shared = param.device.type == "cpu" and param.dtype == torch.float32
        weights = param.data.numpy() if shared else param.data.detach().float().cpu().numpy()
        grads = param.grad.numpy() if shared else param.grad.detach().float().cpu().numpy()
        new_weights, new_grads = sgd((shim.id, name), weights, grads, lr_scale=lr_scale_for(name))
        if not (shared and _same_memory(new_weights, weights)):
            param.data.copy_(torch.from_numpy(new_weights))
        if not (shared and _same_memory(new_grads, grads)):
            param.grad.zero_()
