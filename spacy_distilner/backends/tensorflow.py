"""TensorFlow backend: the DistilBERT token classifier as one ``tf.function`` over the model's weights.

The graph is built from the model's safetensors weights read as numpy (no torch module is
loaded) — the same numbers as torch — with plain TensorFlow ops: no Keras, no ``tf-keras``, no transformers TF classes.
transformers' TF models need Keras 2 and make transformers import TensorFlow into every process
that loads a model once TensorFlow is installed (measured: +4 s and +540 MB on the first Doc of a
torch pipeline); transformers 5 drops them. One trace serves every batch shape.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any, ClassVar, Optional

import numpy as np

from ..errors import Errors
from ..settings import Settings
from .base import Described
from .weights import Weights


def _tf() -> Any:
    """TensorFlow, or D025 naming the extra that installs it."""
    try:
        import tensorflow as tf
    except ImportError as err:
        raise ImportError(Errors.D025.format(err=err)) from err
    return tf


def set_threads(tf: Any, num_threads: Optional[int]) -> None:
    """Intra-op threads (TensorFlow fixes them when its runtime starts: a later change warns W004)."""
    if not num_threads:
        return
    current = tf.config.threading.get_intra_op_parallelism_threads()
    if current == num_threads:
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(int(num_threads))
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # the runtime is already running with other settings
        warnings.warn(Errors.W004.format(wanted=num_threads, current=current or "all cores"))


class TensorFlowBackend(Described):
    """Runs a DistilBERT token classifier (``DistilBertForTokenClassification`` weights) in TensorFlow, fp32.

    It owns its ``weights`` (the model directory, or a module in memory) and saves them as they are.
    """

    name: ClassVar[str] = "tensorflow"
    trainable: ClassVar[bool] = False

    def __init__(self, weights: Weights, num_threads: Optional[int] = None) -> None:
        self.tf = tf = _tf()
        set_threads(tf, num_threads)
        config = weights.config
        if config.model_type != "distilbert" or config.activation not in ("gelu", "relu"):
            raise ValueError(Errors.D026.format(model_type=config.model_type, activation=config.activation))
        self.weights = weights
        self.device = "cpu" if not tf.config.list_physical_devices("GPU") else "gpu"
        self.precision = "fp32"
        self.n_heads, self.n_layers = config.n_heads, config.n_layers
        self.activation = config.activation
        self.w = {name.removeprefix("distilbert."): tf.constant(array) for name, array in weights.arrays()}
        spec = tf.TensorSpec([None, None], tf.int32)
        self._forward = tf.function(self._graph, input_signature=[spec, spec])

    @classmethod
    def load(
        cls, path: Path, settings: Settings, tokenizer: Any, runtime: tuple[str, str], owner: Any = None
    ) -> "TensorFlowBackend":
        return cls(Weights(path, owner=owner), settings.num_threads)

    @classmethod
    def from_module(
        cls, module: Any, tokenizer: Any, settings: Settings, runtime: tuple[str, str]
    ) -> "TensorFlowBackend":
        return cls(Weights(module=module), settings.num_threads)

    @property
    def config(self) -> Any:
        return self.weights.config

    @property
    def module(self) -> Any:
        return self.weights.module

    def save(self, path: Path) -> None:
        self.weights.save(path)

    def _linear(self, x: Any, name: str) -> Any:
        return self.tf.matmul(x, self.w[f"{name}.weight"], transpose_b=True) + self.w[f"{name}.bias"]

    def _norm(self, x: Any, name: str) -> Any:
        tf = self.tf
        mean, var = tf.nn.moments(x, axes=[-1], keepdims=True)
        return (x - mean) * tf.math.rsqrt(var + 1e-12) * self.w[f"{name}.weight"] + self.w[f"{name}.bias"]

    def _attention(self, x: Any, masked: Any, name: str) -> Any:
        """Multi-head self-attention; ``masked``: (rows, 1, 1, length) True where a piece is padding."""
        tf = self.tf
        rows, length, dim = tf.shape(x)[0], tf.shape(x)[1], x.shape[-1]
        head = dim // self.n_heads

        def split(t: Any) -> Any:
            return tf.transpose(tf.reshape(t, [rows, length, self.n_heads, head]), [0, 2, 1, 3])

        q, k, v = (split(self._linear(x, f"{name}.{p}_lin")) for p in ("q", "k", "v"))
        scores = tf.matmul(q / math.sqrt(head), k, transpose_b=True)
        scores = tf.where(masked, tf.constant(np.finfo(np.float32).min, tf.float32), scores)
        context = tf.matmul(tf.nn.softmax(scores, axis=-1), v)
        merged = tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [rows, length, dim])
        return self._linear(merged, f"{name}.out_lin")

    def _graph(self, input_ids: Any, attention_mask: Any) -> Any:
        tf = self.tf
        positions = tf.range(tf.shape(input_ids)[1])
        x = tf.gather(self.w["embeddings.word_embeddings.weight"], input_ids)
        x = x + tf.gather(self.w["embeddings.position_embeddings.weight"], positions)[tf.newaxis]
        x = self._norm(x, "embeddings.LayerNorm")
        masked = tf.equal(attention_mask, 0)[:, tf.newaxis, tf.newaxis, :]
        act = (lambda t: tf.nn.gelu(t, approximate=False)) if self.activation == "gelu" else tf.nn.relu
        for i in range(self.n_layers):
            name = f"transformer.layer.{i}"
            x = self._norm(x + self._attention(x, masked, f"{name}.attention"), f"{name}.sa_layer_norm")
            ffn = self._linear(act(self._linear(x, f"{name}.ffn.lin1")), f"{name}.ffn.lin2")
            x = self._norm(x + ffn, f"{name}.output_layer_norm")
        return self._linear(x, "classifier")

    def forward(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        ids = np.ascontiguousarray(input_ids, dtype=np.int32)
        mask = np.ascontiguousarray(attention_mask, dtype=np.int32)
        return np.asarray(self._forward(ids, mask), dtype=np.float32)
