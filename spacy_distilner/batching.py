"""Stage 2b — batching: length-bucketed batches of few distinct shapes under a padded-token budget."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .tokenize import DocPieces
from .windows import Window


@dataclass
class Batch:
    """Padded model inputs for some windows (``rows`` index into the window list)."""

    rows: list[int]
    input_ids: np.ndarray  # (n_rows, length) int64
    attention_mask: np.ndarray  # (n_rows, length) int64
    owned: list[tuple[int, slice, slice]]  # per row: (doc, owned pieces in the doc, the same in the row)

    def scatter(self, values: np.ndarray, out: Sequence[np.ndarray]) -> None:
        """Copy each row's owned positions of ``values`` (rows, length, ...) into ``out[doc]``."""
        for row, (doc, in_doc, in_row) in enumerate(self.owned):
            out[doc][in_doc] = values[row, in_row]

    def gather(self, per_doc: Sequence[np.ndarray], fill: int) -> np.ndarray:
        """``(rows, length)`` array of ``per_doc`` values at each row's owned positions, ``fill`` elsewhere."""
        values = np.full(self.input_ids.shape, fill, dtype=per_doc[0].dtype if per_doc else np.int64)
        for row, (doc, in_doc, in_row) in enumerate(self.owned):
            values[row, in_row] = per_doc[doc][in_doc]
        return values


@dataclass
class PaddingStats:
    """Counts of real and padded positions seen by the model (special tokens count as real),
    and the seconds spent in the backend's forward pass."""

    windows: int = 0
    batches: int = 0
    real_tokens: int = 0
    padded_tokens: int = 0
    forward_seconds: float = 0.0

    @property
    def waste(self) -> float:
        """Share of processed positions that were padding."""
        total = self.real_tokens + self.padded_tokens
        return self.padded_tokens / total if total else 0.0

    def add(self, batch: Batch) -> None:
        real = int(batch.attention_mask.sum())
        self.windows += len(batch.rows)
        self.batches += 1
        self.real_tokens += real
        self.padded_tokens += batch.attention_mask.size - real

    def as_dict(self) -> dict[str, float]:
        return {
            "windows": self.windows,
            "batches": self.batches,
            "real_tokens": self.real_tokens,
            "padded_tokens": self.padded_tokens,
            "padding_waste": self.waste,
            "forward_seconds": self.forward_seconds,
        }


def bucket(length: int) -> int:
    """The padded row length for a row of ``length``: the next multiple of an eighth of the power of two
    at or below it, and of 4 at least (4, 8, … 64, 72, … 128, 144, …: 40 lengths up to 512), so a
    row gains fewer than 4 positions or an eighth of its length."""
    step = max(4, 1 << max(0, length.bit_length() - 4))
    return -(-length // step) * step


def plan_batches(lengths: Sequence[int], max_batch_tokens: int, max_width: int) -> list[tuple[int, list[int]]]:
    """``(width, rows)`` per batch, longest first: rows of one bucket (:func:`bucket`, at most ``max_width``)
    go together, as many a batch as ``rows × width`` ≤ ``max_batch_tokens`` allows.

    Backends keep kernels and buffers per input shape (oneDNN primitives, allocator bins), and a
    long-running process would otherwise meet a new row length in almost every batch; bucketed, the
    lengths are few and reused, at the cost of some padding. Row counts are left as they come: padding
    them too (or splitting them into powers of two) cost more time than the memory it saved.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    groups: dict[int, list[int]] = {}
    for i in order:
        groups.setdefault(min(bucket(lengths[i]), max_width), []).append(i)
    batches = []
    for width, rows in groups.items():
        most = max_batch_tokens // width
        batches += [(width, rows[start : start + most]) for start in range(0, len(rows), most)]
    return batches


def build_batches(
    pieces: Sequence[DocPieces],
    windows: Sequence[Window],
    prefix: Sequence[int],
    suffix: Sequence[int],
    pad_id: int,
    max_batch_tokens: int,
    max_length: int,
) -> list[Batch]:
    """Pad each planned batch to its bucket width (special tokens added here; ``max_length``: the model's rows)."""
    n_special = len(prefix) + len(suffix)
    lengths = [w.length + n_special for w in windows]
    out = []
    for width, rows in plan_batches(lengths, max_batch_tokens, max_length):
        ids = np.full((len(rows), width), pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for r, i in enumerate(rows):
            w = windows[i]
            seq = np.concatenate([prefix, pieces[w.doc].ids[w.start : w.end], suffix])
            ids[r, : len(seq)] = seq
            mask[r, : len(seq)] = 1
        owned = [(windows[i].doc, windows[i].owned, windows[i].owned_in_row(len(prefix))) for i in rows]
        out.append(Batch(rows, ids, mask, owned))
    return out
