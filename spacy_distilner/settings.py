"""The component's settings, declared once: the factory's default config, its signature and the
validation all come from :class:`Settings`. Also the one environment default the package sets
(``USE_TF``, by ``import_transformers``)."""

from __future__ import annotations

import inspect
import os
import sys
from dataclasses import MISSING, asdict, dataclass, fields
from types import ModuleType
from typing import Any, Literal, Optional, get_args, get_origin, get_type_hints

from .casing import CapsView
from .errors import Errors

Pooling = Literal["first", "average", "max"]
Decoding = Literal["viterbi", "greedy"]
EntsMode = Literal["overwrite", "keep", "spans"]
BackendName = Literal["torch", "onnx", "tensorflow"]
Precision = Literal["auto", "fp32", "bf16", "int8", "fp16"]
TagScheme = Literal["iob2", "bilou"]
LabelPieces = Literal["first", "all"]
PRECISIONS: dict[str, tuple[str, ...]] = {
    "torch": ("auto", "fp32", "bf16"),
    "onnx": ("auto", "fp32", "int8", "fp16"),
    "tensorflow": ("auto", "fp32"),
}
DEFAULT_SCORER = {"@scorers": "spacy.ner_scorer.v1"}


@dataclass(frozen=True)
class Range:
    """The numbers a numeric setting accepts: from ``low`` up to ``high`` (excluded when ``open_high``;
    ``None``: no upper bound); ``null``: what ``None`` means, where the setting may be null."""

    low: float
    high: Optional[float] = None
    open_high: bool = False
    null: Optional[str] = None

    def admits(self, value: Any, integer: bool) -> bool:
        if value is None:
            return self.null is not None
        if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
            return False
        if self.high is None:
            return value >= self.low
        return self.low <= value < self.high if self.open_high else self.low <= value <= self.high

    def describe(self, integer: bool) -> str:
        kind = "an integer" if integer else "a number"
        close = ")" if self.open_high else "]"
        bounds = f">= {self.low}" if self.high is None else f"in [{self.low}, {self.high}{close}"
        return f"{kind} {bounds}" + (f", or null ({self.null})" if self.null is not None else "")


#: The range of every numeric setting, checked when a component is built; ``max_length`` is checked
#: against the model's positions and special tokens again when the model is loaded (:func:`check_max_length`).
RANGES: dict[str, Range] = {
    "max_length": Range(1, null="the model's stored window, else its max_position_embeddings"),
    "stride": Range(0, null="the model's stored stride, else a quarter of the window"),
    "max_batch_tokens": Range(1),
    "threshold": Range(0, 1),
    "num_threads": Range(1, null="torch's and the backend's own thread count"),
    "label_smoothing": Range(0, 1, open_high=True),
    "head_lr_scale": Range(0),
    "lora_r": Range(0),  # 0: full fine-tuning
    "lora_alpha": Range(1),
    "lora_dropout": Range(0, 1, open_high=True),
}


@dataclass(frozen=True)
class Settings:
    """Every setting of a ``distilner`` component (its config block, less ``scorer``), checked on creation.

    Inference: ``model`` … ``num_threads``; training only: ``tag_scheme`` … ``freeze_embeddings``.
    """

    model: str = "default"
    backend: BackendName = "torch"
    precision: Precision = "auto"
    device: str = "auto"
    max_length: Optional[int] = None
    stride: Optional[int] = None
    max_batch_tokens: int = 8192
    pooling: Pooling = "first"
    decoding: Decoding = "viterbi"
    caps_view: CapsView = "title"
    threshold: float = 0.0
    store_probs: bool = True
    ents_mode: EntsMode = "overwrite"
    spans_key: str = "distilner"
    num_threads: Optional[int] = None
    tag_scheme: TagScheme = "iob2"
    label_smoothing: float = 0.0
    label_pieces: LabelPieces = "first"
    head_lr_scale: float = 1.0
    head_label_map: Optional[dict[str, str]] = None
    lora_r: int = 0
    lora_alpha: int = 16
    lora_dropout: float = 0.1
    lora_ffn: bool = False
    freeze_embeddings: bool = False

    def __post_init__(self) -> None:
        for name, options in choices().items():
            value = getattr(self, name)
            if value not in options:
                raise ValueError(Errors.D009.format(what=name, value=value, options=", ".join(options)))
        if self.precision not in PRECISIONS[self.backend]:
            options = ", ".join(PRECISIONS[self.backend])
            raise ValueError(Errors.D018.format(precision=self.precision, backend=self.backend, options=options))
        hints = get_type_hints(Settings)
        for name, allowed in RANGES.items():
            value, integer = getattr(self, name), int in (hints[name], *get_args(hints[name]))
            if not allowed.admits(value, integer):
                raise ValueError(Errors.D013.format(name=name, allowed=allowed.describe(integer), value=value))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_max_length(max_length: int, limit: int, n_special: int, stored_stride: int = 0) -> None:
    """Refuse (D013) a window the loaded model cannot run: ``max_length`` must hold the model's
    ``n_special`` special tokens, one piece and the stride the model stored (a stride set in the
    config is checked against the window instead, D007), and stay within its ``limit`` positions."""
    low = n_special + 1 + stored_stride
    if not low <= max_length <= limit:
        room = f"{n_special} special tokens + 1 piece"
        if stored_stride:
            room += f" + the model's stored stride {stored_stride} (set stride to go lower)"
        allowed = (
            f"an integer in [{low}, {limit}] for this model ({room}; at most its {limit} positions, "
            "max_position_embeddings), or null (the model's own)"
        )
        raise ValueError(Errors.D013.format(name="max_length", allowed=allowed, value=max_length))


def choices() -> dict[str, tuple[str, ...]]:
    """The settings with a fixed set of values (their ``Literal`` types), name -> options."""
    hints = get_type_hints(Settings)
    return {f.name: get_args(hints[f.name]) for f in fields(Settings) if get_origin(hints[f.name]) is Literal}


def default_config() -> dict[str, Any]:
    """The factory's default config: every setting's default, and the scorer."""
    return {**Settings().as_dict(), "scorer": dict(DEFAULT_SCORER)}


def factory_signature(head: list[inspect.Parameter], returns: Any) -> inspect.Signature:
    """A factory signature ``(*head, <every setting>, scorer)`` with the settings' types and defaults,
    so that spaCy validates a config against :class:`Settings` itself."""
    hints = get_type_hints(Settings)
    kw = inspect.Parameter.KEYWORD_ONLY
    params = [
        inspect.Parameter(f.name, kw, default=f.default if f.default is not MISSING else inspect.Parameter.empty, annotation=hints[f.name])
        for f in fields(Settings)
    ]
    params.append(inspect.Parameter("scorer", kw, annotation=Optional[Any]))
    return inspect.Signature(head + params, return_annotation=returns)


def import_transformers() -> ModuleType:
    """transformers, imported with ``USE_TF=0`` unless the environment sets ``USE_TF`` or transformers was
    imported already: where TensorFlow is installed, transformers would import it into the process with its
    first model class. The package imports transformers only through here; the tensorflow backend imports
    TensorFlow itself."""
    if "transformers" not in sys.modules:
        os.environ.setdefault("USE_TF", "0")
    import transformers

    return transformers
