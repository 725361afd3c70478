"""Stage 3 — run: backends that turn padded piece ids into tag logits."""

from .base import Backend, resolve_device, resolve_precision

__all__ = ["Backend", "resolve_device", "resolve_precision"]
