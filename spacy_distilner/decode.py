"""Stage 4b — decode: per-token tag ids -> entity spans, repairing invalid sequences.

Tags are read from the model's ``id2label``: ``O`` and ``<prefix>-<label>`` with
prefix B/I (IOB2), B/I/L/U (BILOU) or B/I/E/S (IOBES); the label may itself
contain hyphens (``B-creative-work``). Repair rules, the same for every scheme:

* ``B-X`` / ``U-X`` / ``S-X`` always start a new entity;
* ``I-X`` / ``L-X`` / ``E-X`` continue an open ``X`` entity, and otherwise
  (after ``O`` or after another type) start a new ``X`` entity — the
  conlleval convention;
* ``L-X`` / ``U-X`` / ``E-X`` / ``S-X`` close the entity after the token;
  ``O`` closes it before the token.

So every predicted non-``O`` tag ends up inside exactly one entity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from .errors import Errors

BEGIN = frozenset("BUS")
INSIDE = frozenset("ILE")
END = frozenset("LUES")


@dataclass(frozen=True)
class TagSet:
    """Parsed tag inventory: ``prefixes[i]`` and ``labels[i]`` for tag id ``i``."""

    tags: tuple[str, ...]
    prefixes: tuple[str, ...]
    labels: tuple[str, ...]
    o_index: int

    @classmethod
    def from_id2label(cls, id2label: Mapping[int, str]) -> "TagSet":
        tags = tuple(id2label[i] for i in range(len(id2label)))
        prefixes, labels = [], []
        for tag in tags:
            if tag == "O":
                prefixes.append("O")
                labels.append("")
                continue
            prefix, sep, label = tag.partition("-")
            if not sep or not label or prefix not in BEGIN | INSIDE:
                raise ValueError(Errors.D005.format(tag=tag))
            prefixes.append(prefix)
            labels.append(label)
        if "O" not in tags:
            raise ValueError(Errors.D006.format(tags=list(tags)))
        return cls(tags, tuple(prefixes), tuple(labels), tags.index("O"))

    @property
    def entity_labels(self) -> tuple[str, ...]:
        """Entity labels in first-seen tag order."""
        return tuple(dict.fromkeys(lab for lab in self.labels if lab))


def decode(tag_ids: Sequence[int], tagset: TagSet) -> list[tuple[int, int, str]]:
    """Entity spans ``(start, end, label)`` in token indices, following the module's repair rules."""
    spans: list[tuple[int, int, str]] = []
    start, label = -1, ""
    for i, t in enumerate(tag_ids):
        prefix, lab = tagset.prefixes[t], tagset.labels[t]
        if prefix == "O":
            if start >= 0:
                spans.append((start, i, label))
                start = -1
            continue
        if prefix in BEGIN or start < 0 or lab != label:
            if start >= 0:
                spans.append((start, i, label))
            start, label = i, lab
        if prefix in END:
            spans.append((start, i + 1, label))
            start = -1
    if start >= 0:
        spans.append((start, len(tag_ids), label))
    return spans


def entropy(probs: np.ndarray) -> np.ndarray:
    """Shannon entropy in nats over the last axis (0 for one-hot rows, never negative)."""
    p = np.clip(probs, 1e-12, 1.0)
    return np.maximum(-(probs * np.log(p)).sum(axis=-1), 0.0)


def span_confidence(probs: np.ndarray, tag_ids: np.ndarray, start: int, end: int) -> float:
    """Entity confidence: the mean over its tokens of the probability of each token's predicted tag."""
    rows = np.arange(start, end)
    return float(probs[rows, tag_ids[start:end]].mean())
