"""spacy-distilner: fast DistilBERT token-classification NER as a spaCy component.

Importing the package imports nothing heavy: ``DistilNER``, ``make_distilner`` and ``pipeline``
are loaded on first use (spaCy finds the factory through its ``spacy_factories`` entry point).

Where TensorFlow is installed, transformers imports it into every process that loads a model
(measured: +4 s and +540 MB before the first Doc). The package keeps it out — ``USE_TF=0`` unless
the environment sets ``USE_TF`` or transformers was imported first — and its tensorflow backend
imports TensorFlow itself.
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
