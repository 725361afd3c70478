"""Where distilner keeps what it derives from a model: ONNX exports, rebuilt models, weight digests."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$DISTILNER_CACHE``, else ``$XDG_CACHE_HOME/spacy_distilner``, else ``~/.cache/spacy_distilner``."""
    if os.environ.get("DISTILNER_CACHE"):
        return Path(os.environ["DISTILNER_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "spacy_distilner"
