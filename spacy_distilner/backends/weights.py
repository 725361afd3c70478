"""The weights a backend that runs from files (ONNX, TensorFlow) owns: a model directory, or a module in memory."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np

from ..loading import copy_weights, load_classifier, read_arrays, save_weights, weight_files
from ..model_dir import file_digest
from ..settings import import_transformers


class Weights:
    """A model directory, kept for as long as this object lives (``owner``: what keeps it on disk, e.g.
    the temporary directory of ``from_bytes``), or a transformers token classifier in memory.

    The transformers module of a directory is read only when asked for (``module``): a backend that
    runs a graph needs the config and the files, not the torch module.
    """

    def __init__(self, path: Optional[Path] = None, module: Any = None, owner: Any = None) -> None:
        """One of ``path`` (a validated model directory: ``loading.check_model_dir``) or ``module``."""
        self.path, self._module, self._owner = path, module, owner
        self._config: Any = None

    @property
    def config(self) -> Any:
        """The transformers config (read from ``config.json`` without loading the weights)."""
        if self._config is None:
            if self._module is not None:
                self._config = self._module.config
            else:
                auto = import_transformers().AutoConfig
                self._config = auto.from_pretrained(str(self.path), local_files_only=True)
        return self._config

    @property
    def module(self) -> Any:
        """The transformers module, read from the directory (fp32) on first access and kept."""
        if self._module is None:
            self._module = load_classifier(self.path)  # type: ignore[arg-type]
        return self._module

    def transient_module(self) -> Any:
        """The module, read from the directory without keeping it when none is held (a one-time export)."""
        return self._module if self._module is not None else load_classifier(self.path)  # type: ignore[arg-type]

    def digest(self) -> str:
        """SHA-256 of the config and weights: of the files' (cached) digests for a directory, of the
        fp32 tensors for a module in memory."""
        sha = hashlib.sha256(self.config.to_json_string().encode())
        if self.path is not None:
            for file in weight_files(self.path):
                sha.update(f"{file.name}:{file_digest(file)}".encode())
            return sha.hexdigest()
        for name, array in self.arrays():
            sha.update(name.encode())
            sha.update(np.ascontiguousarray(array))
        return sha.hexdigest()

    def arrays(self) -> Iterator[tuple[str, np.ndarray]]:
        """Every tensor as a float32 numpy array with its name, one at a time."""
        if self.path is not None:
            yield from read_arrays(self.path)
            return
        for name, tensor in self._module.state_dict().items():
            yield name, tensor.detach().float().cpu().numpy()

    def save(self, path: Path) -> None:
        """The config and weights into the model directory ``path``: the files copied, or the module saved."""
        if self.path is not None:
            copy_weights(self.path, path)
        else:
            save_weights(path, self._module)
