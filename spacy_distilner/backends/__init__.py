"""Stage 3 — run: backends that turn padded piece ids into tag logits."""

from .base import Backend, resolve_device, resolve_precision, training_autocast

__all__ = ["Backend", "resolve_device", "resolve_precision", "training_autocast"]
