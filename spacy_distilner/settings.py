"""The component's settings, declared once: the factory's default config, its signature and the
validation all come from :class:`Settings`."""

from __future__ import annotations

import inspect
from dataclasses import MISSING, asdict, dataclass, fields
from typing import Any, Literal, Optional, get_args, get_origin, get_type_hints

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
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(Errors.D013.format(value=self.threshold))
        if self.lora_r < 0:
            raise ValueError(f"lora_r must be >= 0 (0 = full fine-tuning), got {self.lora_r}.")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


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
