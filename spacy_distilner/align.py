"""Stage 4a — align: word pieces -> spaCy tokens by character offsets, and pooling.

A piece belongs to every spaCy token its ``[start, end)`` character span overlaps
(found with ``searchsorted`` on token boundaries, never by matching strings).
A token with no piece — whitespace, control characters, characters the
vocabulary drops — is marked unaligned and later gets the ``O`` tag.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
from spacy.attrs import IDX, IS_SPACE, LENGTH
from spacy.tokens import Doc

from .settings import Pooling



@dataclass(frozen=True)
class Alignment:
    """CSR map token -> pieces: token ``t`` owns ``pieces[indptr[t]:indptr[t+1]]`` (ascending)."""

    indptr: np.ndarray  # (n_tokens + 1,)
    pieces: np.ndarray  # (n_pairs,)

    @property
    def aligned(self) -> np.ndarray:
        """Boolean mask of tokens that have at least one piece."""
        return np.diff(self.indptr) > 0


def token_bounds(doc: Doc) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Start and end character offsets (without trailing whitespace) and whitespace flags of every token."""
    arr = doc.to_array([IDX, LENGTH, IS_SPACE]).astype(np.int64).reshape(-1, 3)
    return arr[:, 0], arr[:, 0] + arr[:, 1], arr[:, 2] == 1


def align(
    starts: np.ndarray, ends: np.ndarray, offsets: np.ndarray, skip: Optional[np.ndarray] = None
) -> Alignment:
    """Align pieces with character ``offsets`` to tokens spanning ``[starts, ends)``.

    Tokens where ``skip`` is true (whitespace tokens) get no pieces, even when a piece's
    span reaches over them (the tokenizer can fold dropped characters into a piece).
    """
    n_tokens = len(starts)
    p_start, p_end = offsets[:, 0], offsets[:, 1]
    first = np.searchsorted(ends, p_start, side="right")  # first token ending after the piece starts
    last = np.searchsorted(starts, p_end, side="left") - 1  # last token starting before it ends
    counts = np.maximum(last - first + 1, 0)
    counts[p_end <= p_start] = 0  # zero-width pieces carry no text
    piece_idx = np.repeat(np.arange(len(offsets)), counts)
    run_start = np.repeat(np.cumsum(counts) - counts, counts)
    tok_idx = np.repeat(first, counts) + (np.arange(len(piece_idx)) - run_start)
    if skip is not None:
        keep = ~skip[tok_idx]
        piece_idx, tok_idx = piece_idx[keep], tok_idx[keep]
    order = np.lexsort((piece_idx, tok_idx))
    indptr = np.zeros(n_tokens + 1, dtype=np.int64)
    np.cumsum(np.bincount(tok_idx, minlength=n_tokens), out=indptr[1:])
    return Alignment(indptr, piece_idx[order])


def softmax(logits: np.ndarray) -> np.ndarray:
    """Numerically stable softmax over the last axis, in float32."""
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z, dtype=np.float32)
    return e / e.sum(axis=-1, keepdims=True)


def pool(
    alignment: Alignment,
    piece_logits: np.ndarray,
    o_index: int,
    pooling: Pooling = "first",
    temperature: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Token logits and probabilities from piece logits.

    ``first`` takes the first piece's logits; ``average`` and ``max`` pool the pieces'
    probabilities (``max`` renormalised) and their logits the same way. Unaligned
    tokens get zero logits and a one-hot ``O`` distribution.
    """
    n_tokens = len(alignment.indptr) - 1
    n_tags = piece_logits.shape[1]
    logits = np.zeros((n_tokens, n_tags), dtype=np.float32)
    probs = np.zeros((n_tokens, n_tags), dtype=np.float32)
    probs[:, o_index] = 1.0
    has = alignment.aligned
    if not has.any():
        return logits, probs
    heads = alignment.indptr[:-1][has]
    if pooling == "first":
        logits[has] = piece_logits[alignment.pieces[heads]]
        probs[has] = softmax(logits[has] / temperature)
        return logits, probs
    gathered = piece_logits[alignment.pieces]
    piece_probs = softmax(gathered / temperature)
    counts = np.diff(alignment.indptr)[has][:, None]
    if pooling == "average":
        logits[has] = np.add.reduceat(gathered, heads, axis=0) / counts
        probs[has] = np.add.reduceat(piece_probs, heads, axis=0) / counts
    else:
        logits[has] = np.maximum.reduceat(gathered, heads, axis=0)
        p = np.maximum.reduceat(piece_probs, heads, axis=0)
        probs[has] = p / p.sum(axis=-1, keepdims=True)
    return logits, probs
