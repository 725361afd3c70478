"""The one interface every backend implements, and where and at which precision a backend runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np

from ..errors import Errors
from ..settings import Settings


class Backend(Protocol):
    """Runs the token classifier: ``(rows, length)`` ids and mask -> ``(rows, length, n_tags)`` float32 logits.

    A backend owns what it runs from: a torch module in memory, or files (an ONNX graph, the
    safetensors a TensorFlow graph was built from) kept for as long as it lives. ``save`` writes the
    model's config and weights (and its graph) into a model directory from what it owns, never from
    the directory it was loaded from.
    """

    name: ClassVar[str]  # the ``backend`` setting that selects it
    trainable: ClassVar[bool]  # whether ``module`` is what runs, so training it changes the predictions
    precision: str  # the precision it runs (``auto`` resolved)
    device: str  # where it runs: ``cpu``, ``cuda:0``, …

    @classmethod
    def load(
        cls, path: Path, settings: Settings, tokenizer: Any, runtime: tuple[str, str], owner: Any = None
    ) -> "Backend":
        """The backend for the model stored in ``path`` (validated: ``loading.check_model_dir``), at
        ``runtime``'s ``(device, precision)``; ``owner``: what keeps ``path`` on disk (a temporary
        directory), kept while the backend reads it."""
        ...

    @classmethod
    def from_module(cls, module: Any, tokenizer: Any, settings: Settings, runtime: tuple[str, str]) -> "Backend":
        """The backend for a transformers token classifier in memory (e.g. one made for training)."""
        ...

    @property
    def config(self) -> Any:
        """The transformers config of the model (tags, position limit)."""
        ...

    @property
    def module(self) -> Any:
        """The transformers module (a backend that runs from files reads it on first access)."""
        ...

    def forward(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray: ...

    def info(self) -> dict[str, str]:
        """``backend``, ``precision`` and ``device`` actually in use."""
        ...

    def save(self, path: Path) -> None:
        """Write the config and weights (and the graph it runs) into the model directory ``path``."""
        ...


class Described:
    """``info()`` from a backend's ``name``, ``precision`` and ``device``: the one implementation the backends share."""

    name: ClassVar[str]
    precision: str
    device: str

    def info(self) -> dict[str, str]:
        """``backend``, ``precision`` and ``device`` actually in use."""
        return {"backend": self.name, "precision": self.precision, "device": self.device}


def runtime(settings: Settings, training: bool = False) -> tuple[str, str]:
    """The device and precision a backend runs for ``settings`` on this machine (``auto`` resolved;
    only torch places a model on a device itself)."""
    device = resolve_device(settings.device) if settings.backend == "torch" else "cpu"
    return device, resolve_precision(settings.backend, settings.precision, device, training)


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

    if backend != "torch":
        return "fp32" if precision == "auto" else precision
    native = _native_bf16(device)
    if precision == "auto":
        return "bf16" if native and not training else "fp32"
    if precision == "bf16" and device == "cpu" and not native:
        warnings.warn(Errors.W001)
        return "fp32"
    return precision


def training_autocast(backend: str, precision: str, device: str) -> bool:
    """Whether training runs its forward pass under bf16 autocast (fp32 master weights): with
    ``auto`` or ``bf16`` where bf16 is native (CUDA, AMX or AVX512-BF16), never with ``fp32``."""
    return backend == "torch" and precision in ("auto", "bf16") and _native_bf16(device)


def _native_bf16(device: str) -> bool:
    """Whether ``device`` computes in bf16 natively: CUDA, or a CPU with AMX or AVX512-BF16."""
    from ..cpu import cpu_info

    return device.startswith("cuda") or (device == "cpu" and cpu_info().native_bf16)
