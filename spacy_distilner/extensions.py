"""Extension attributes for per-token scores and per-entity confidence.

Arrays live once per Doc (``doc._.ner_logits`` / ``doc._.ner_probs``, shape
``(n_tokens, n_tags)``, tag order ``pipe.tag_labels``); token attributes are
views computed on access, so they cost no memory per token.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
from spacy.tokens import Doc, Span, Token

from .decode import entropy


def _row(attr: str):
    def get(token: Token) -> Optional[np.ndarray]:
        arr = getattr(token.doc._, attr)
        return None if arr is None else arr[token.i]

    return get


def _confidence(token: Token) -> Optional[float]:
    probs = token._.ner_probs
    return None if probs is None else float(probs.max())


def _entropy(token: Token) -> Optional[float]:
    probs = token._.ner_probs
    return None if probs is None else float(entropy(probs))


def install_extensions() -> None:
    """Register the attributes (idempotent; also runs in worker processes)."""
    for attr in ("ner_logits", "ner_probs"):
        if not Doc.has_extension(attr):
            Doc.set_extension(attr, default=None)
        if not Token.has_extension(attr):
            Token.set_extension(attr, getter=_row(attr))
    if not Token.has_extension("ner_confidence"):
        Token.set_extension("ner_confidence", getter=_confidence)
    if not Token.has_extension("ner_entropy"):
        Token.set_extension("ner_entropy", getter=_entropy)
    if not Span.has_extension("confidence"):
        Span.set_extension("confidence", default=None)
