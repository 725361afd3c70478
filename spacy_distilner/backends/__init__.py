"""Stage 3 — run: backends that turn padded piece ids into tag logits, and the choice among them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..settings import Settings
from .base import Backend, resolve_device, resolve_precision, runtime, training_autocast

__all__ = [
    "Backend", "backend_class", "load_backend", "make_backend", "resolve_device", "resolve_precision", "runtime",
    "training_autocast",
]


def backend_class(name: str) -> type[Backend]:
    """The backend class of a ``backend`` setting (``Settings`` has checked the name), imported on use."""
    if name == "torch":
        from .torch import TorchBackend

        return TorchBackend
    if name == "tensorflow":
        from .tensorflow import TensorFlowBackend

        return TensorFlowBackend
    from .onnx import OnnxBackend

    return OnnxBackend


def _set_torch_threads(settings: Settings) -> None:
    """torch's thread count is process-wide; onnxruntime and TensorFlow get their own from their backend."""
    if settings.num_threads:
        import torch

        torch.set_num_threads(int(settings.num_threads))


def load_backend(path: Path, settings: Settings, tokenizer: Any, owner: Any = None) -> Backend:
    """The backend ``settings`` ask for, for the model stored in ``path`` (``owner``: what keeps ``path``
    on disk, kept by a backend that goes on reading it)."""
    _set_torch_threads(settings)
    return backend_class(settings.backend).load(path, settings, tokenizer, runtime(settings), owner)


def make_backend(module: Any, tokenizer: Any, settings: Settings, training: bool = False) -> Backend:
    """The backend ``settings`` ask for, for a transformers token classifier in memory
    (``training``: precision resolved for training, fp32 weights)."""
    _set_torch_threads(settings)
    return backend_class(settings.backend).from_module(module, tokenizer, settings, runtime(settings, training))
