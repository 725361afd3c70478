"""Stage 2b — batching: length-sorted batches under a padded-token budget."""

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


#: A batch is closed before its padding would pass this share of its positions.
MAX_BATCH_PADDING = 0.05


def plan_batches(
    lengths: Sequence[int], max_batch_tokens: int, max_padding: float = MAX_BATCH_PADDING
) -> list[list[int]]:
    """Group sequence indices, longest first, so that ``rows × longest`` stays within budget
    and no batch pads more than ``max_padding`` of its positions (a sequence that would
    push it past starts the next batch; on a CPU small batches cost little)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    real = 0
    for i in order:
        if current:
            positions = (len(current) + 1) * lengths[current[0]]
            if positions > max_batch_tokens or positions - real - lengths[i] > max_padding * positions:
                batches.append(current)
                current, real = [], 0
        current.append(i)
        real += lengths[i]
    if current:
        batches.append(current)
    return batches


def build_batches(
    pieces: Sequence[DocPieces],
    windows: Sequence[Window],
    prefix: Sequence[int],
    suffix: Sequence[int],
    pad_id: int,
    max_batch_tokens: int,
) -> list[Batch]:
    """Pad each planned batch only to its own longest window (special tokens added here)."""
    n_special = len(prefix) + len(suffix)
    lengths = [w.length + n_special for w in windows]
    out = []
    for rows in plan_batches(lengths, max_batch_tokens):
        width = lengths[rows[0]]
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
