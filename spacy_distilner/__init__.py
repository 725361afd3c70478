"""spacy-distilner: fast DistilBERT token-classification NER as a spaCy component.

Importing the package imports nothing heavy: ``DistilNER``, ``make_distilner`` and ``pipeline`` are
loaded on first use (spaCy finds the factory through its ``spacy_factories`` entry point).

It changes one thing in the process, on purpose (README, "Backends and precision"): where TensorFlow is
installed, transformers imports it with its first model class, into a torch or ONNX process too. spaCy
imports its installed plugins while it builds a pipeline — this package, and spacy-transformers, which
imports transformers then — so waiting for the package's own first transformers import
(``settings.import_transformers``) comes too late there. ``USE_TF=0`` is therefore set here, unless the
environment sets ``USE_TF`` or transformers was imported first.
"""

from __future__ import annotations

import os
import sys
from typing import Any

if "transformers" not in sys.modules:
    os.environ.setdefault("USE_TF", "0")

__all__ = ["DistilNER", "make_distilner", "pipeline"]
__version__ = "0.2.0"
_LAZY = {"DistilNER": "component", "make_distilner": "component", "pipeline": "hf_api"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'spacy_distilner' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f".{_LAZY[name]}", __name__), name)
