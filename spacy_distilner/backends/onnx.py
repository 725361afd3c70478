"""ONNX Runtime backend: runs an exported token classifier (fp32, int8 or fp16 graph)."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path
from typing import Any, ClassVar, Optional, Sequence

import numpy as np

from ..cpu import cpu_info
from ..errors import Errors
from ..model_dir import read_json_object
from ..settings import Settings
from .base import Described
from .onnx_export import ONNX_FILES, cached_export
from .weights import Weights

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


def check_int8_kernels(model_dir: Path) -> None:
    """Warn (W003) when the int8 graph's recipe (``validation.json``) was made for the other int8 kernel family."""
    report = model_dir / "validation.json"
    if not report.is_file():
        return
    recipe = read_json_object(report).get("int8_recipe") or {}
    made, here = recipe.get("kernels", "avx2"), cpu_info().int8_family  # recipes before "kernels" were AVX2's
    if made != here:
        warnings.warn(Errors.W003.format(path=model_dir, made=made, here=here))


class OnnxBackend(Described):
    """Runs an ONNX graph with inputs ``input_ids`` / ``attention_mask`` and output ``logits``.

    Built by :meth:`load` or :meth:`from_module`, it owns its ``weights`` (the model directory, or
    the module the graph was exported from) and saves them with the graph; the torch module is read
    only when something asks for ``module``.
    """

    name: ClassVar[str] = "onnx"
    trainable: ClassVar[bool] = False

    def __init__(
        self,
        path: str | Path,
        num_threads: Optional[int] = None,
        providers: Optional[Sequence[Any]] = None,
        *,
        precision: str = "fp32",
        weights: Optional[Weights] = None,
    ) -> None:
        """``providers=None``: CUDA when onnxruntime has it, else CPU; ``num_threads``: intra-op threads;
        ``precision``: the graph's; ``weights``: what the graph was made from (needed to save)."""
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if num_threads:
            options.intra_op_num_threads = int(num_threads)
        self.path, self.precision, self.weights = Path(path), precision, weights
        self.session = ort.InferenceSession(
            str(path), sess_options=options, providers=list(providers or providers_for_device("auto"))
        )
        first = self.session.get_providers()[0]
        cuda = self.session.get_provider_options().get(CUDA, {}).get("device_id", "0")
        self.device = f"cuda:{cuda}" if first == CUDA else "cpu"

    @classmethod
    def load(
        cls, path: Path, settings: Settings, tokenizer: Any, runtime: tuple[str, str], owner: Any = None
    ) -> "OnnxBackend":
        """The graph for the runtime's precision stored in ``path``, else one exported, once, into the cache."""
        precision = runtime[1]
        weights = Weights(path, owner=owner)
        graph = path / ONNX_FILES[precision]
        if graph.is_file() and precision == "int8":
            check_int8_kernels(path)
        return cls._with_graph(graph if graph.is_file() else None, weights, tokenizer, settings, precision)

    @classmethod
    def from_module(cls, module: Any, tokenizer: Any, settings: Settings, runtime: tuple[str, str]) -> "OnnxBackend":
        """The graph of ``module`` (exported, once, into the cache)."""
        return cls._with_graph(None, Weights(module=module), tokenizer, settings, runtime[1])

    @classmethod
    def _with_graph(
        cls, graph: Optional[Path], weights: Weights, tokenizer: Any, settings: Settings, precision: str
    ) -> "OnnxBackend":
        if graph is None:
            graph = cached_export(weights, tokenizer, precision)
        providers = providers_for_device(settings.device)
        return cls(graph, settings.num_threads, providers, precision=precision, weights=weights)

    @property
    def config(self) -> Any:
        return self._weights().config

    @property
    def module(self) -> Any:
        return self._weights().module

    def _weights(self) -> Weights:
        if self.weights is None:
            raise ValueError(Errors.D029.format(path=self.path))
        return self.weights

    def save(self, path: Path) -> None:
        """The weights, and the graph in use (so that loading does not export again)."""
        self._weights().save(path)
        target = path / ONNX_FILES[self.precision]
        if not (target.is_file() and target.samefile(self.path)):
            shutil.copyfile(self.path, target)

    def forward(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        feed = {
            "input_ids": np.ascontiguousarray(input_ids, dtype=np.int64),
            "attention_mask": np.ascontiguousarray(attention_mask, dtype=np.int64),
        }
        (logits,) = self.session.run(["logits"], feed)
        return np.asarray(logits, dtype=np.float32)
