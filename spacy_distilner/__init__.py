"""spacy-distilner: fast DistilBERT token-classification NER as a spaCy component.

Importing the package imports nothing heavy and changes nothing in the process: ``DistilNER``,
``make_distilner`` and ``pipeline`` are loaded on first use (spaCy finds the factory through its
``spacy_factories`` entry point). ``USE_TF=0`` is set only when the package itself first imports
transformers (``settings.import_transformers``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["DistilNER", "make_distilner", "pipeline"]
__version__ = "0.2.0"
_LAZY = {"DistilNER": "component", "make_distilner": "component", "pipeline": "hf_api"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'spacy_distilner' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f".{_LAZY[name]}", __name__), name)
