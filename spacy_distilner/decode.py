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

``tag_path`` picks the tags: per-token argmax (``greedy``), or the most probable
sequence that needs no repair (``viterbi``: the argmax path under the scheme's
transition rules — ``I-X`` only after ``B-X``/``I-X``; in BILOU/IOBES also ``B-X``/``I-X``
only before ``I-X``/``L-X``, and no open entity at the end). When the argmax path is
already valid it is the Viterbi path too, so only invalid documents pay for the search.

Whitespace tokens (spaCy makes tokens of NBSP, line breaks, tabs, a second space) are
transparent: ``tag_path(..., skip=mask)`` decides the tags on the other tokens alone, then
gives a skipped token the inside tag of the entity around it (``O`` outside entities). So
``John\u00a0Smith`` is one entity containing the NBSP token, and no entity starts or ends on
whitespace (as in spaCy's own ``ner``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from .errors import Errors
from .settings import Decoding

BEGIN = frozenset("BUS")
INSIDE = frozenset("ILE")
END = frozenset("LUES")
OPEN = frozenset("BI")  # in BILOU/IOBES, an entity is still open after these



@dataclass(frozen=True)
class Transitions:
    """Which tag may follow which (``allowed[prev, cur]``), start a Doc, or end it."""

    allowed: np.ndarray  # (n_tags, n_tags) bool
    start: np.ndarray  # (n_tags,) bool
    end: np.ndarray  # (n_tags,) bool

    def valid(self, tag_ids: np.ndarray) -> bool:
        """Whether the path needs no repair."""
        if len(tag_ids) == 0:
            return True
        ok = self.start[tag_ids[0]] and self.end[tag_ids[-1]]
        return bool(ok and self.allowed[tag_ids[:-1], tag_ids[1:]].all())


@dataclass(frozen=True)
class TagSet:
    """Parsed tag inventory: ``prefixes[i]`` and ``labels[i]`` for tag id ``i``."""

    tags: tuple[str, ...]
    prefixes: tuple[str, ...]
    labels: tuple[str, ...]
    o_index: int

    @classmethod
    def from_config(cls, config: Any) -> "TagSet":
        """The tag set of a transformers model config (its ``id2label``, keys as ints)."""
        return cls.from_id2label({int(k): v for k, v in config.id2label.items()})

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

    @cached_property
    def transitions(self) -> Transitions:
        """The scheme's rules: BILOU/IOBES when any ``L``/``U``/``E``/``S`` tag exists, else IOB2."""
        closed = any(p in "LUES" for p in self.prefixes)
        n = len(self.tags)
        allowed = np.ones((n, n), dtype=bool)
        for prev in range(n):
            for cur in range(n):
                cp, same = self.prefixes[cur], self.labels[prev] == self.labels[cur]
                if closed and self.prefixes[prev] in OPEN:
                    allowed[prev, cur] = cp in INSIDE and same
                elif cp in INSIDE:
                    allowed[prev, cur] = not closed and self.prefixes[prev] in OPEN and same
        start = np.array([p not in INSIDE for p in self.prefixes])
        end = np.array([not (closed and p in OPEN) for p in self.prefixes])
        return Transitions(allowed, start, end)

    def inside_id(self, label: str) -> int:
        """The id of ``I-<label>`` (every scheme has one)."""
        return self.tags.index(f"I-{label}")

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


def tag_path(
    logits: np.ndarray, tagset: TagSet, decoding: Decoding = "viterbi", skip: Optional[np.ndarray] = None
) -> np.ndarray:
    """Tag ids per token from ``(n_tokens, n_tags)`` logits (see the module docstring).

    Rows of zero logits (tokens that no word piece covers, see ``align.pool``) are ``O``.
    ``skip`` marks tokens transparent to decoding (whitespace): tags are decided without them,
    and a skipped token between two tokens of one entity gets its inside tag, else ``O``.
    """
    if skip is None or not skip.any():
        return _tag_path(logits, tagset, decoding)
    kept = np.flatnonzero(~skip)
    path = np.full(len(logits), tagset.o_index, dtype=np.intp)
    inner = _tag_path(logits[kept], tagset, decoding)
    path[kept] = inner
    for start, end, label in decode(inner, tagset):
        first, last = kept[start], kept[end - 1]
        gap = np.arange(first, last + 1)
        path[gap[skip[gap]]] = tagset.inside_id(label)
    return path


def _tag_path(logits: np.ndarray, tagset: TagSet, decoding: Decoding) -> np.ndarray:
    """``tag_path`` without skipped tokens."""
    scores = log_softmax(logits)
    blank = ~logits.any(axis=-1)
    scores[blank] = -np.inf
    scores[blank, tagset.o_index] = 0.0
    greedy = scores.argmax(axis=-1)
    rules = tagset.transitions
    if decoding == "greedy" or rules.valid(greedy):
        return greedy
    return viterbi(scores, rules)


def viterbi(scores: np.ndarray, rules: Transitions) -> np.ndarray:
    """The path of highest total score that ``rules`` allow (``scores``: per-token log-probabilities)."""
    n, n_tags = scores.shape
    penalty = np.where(rules.allowed, 0.0, -np.inf)
    cols = np.arange(n_tags)
    back = np.zeros((n, n_tags), dtype=np.intp)
    best = np.where(rules.start, scores[0], -np.inf)
    for i in range(1, n):
        cand = best[:, None] + penalty
        back[i] = cand.argmax(axis=0)
        best = cand[back[i], cols] + scores[i]
    path = np.empty(n, dtype=np.intp)
    path[-1] = np.where(rules.end, best, -np.inf).argmax()
    for i in range(n - 1, 0, -1):
        path[i - 1] = back[i, path[i]]
    return path


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def entropy(probs: np.ndarray) -> np.ndarray:
    """Shannon entropy in nats over the last axis (0 for one-hot rows, never negative)."""
    p = np.clip(probs, 1e-12, 1.0)
    return np.maximum(-(probs * np.log(p)).sum(axis=-1), 0.0)


def span_confidence(
    probs: np.ndarray, tag_ids: np.ndarray, start: int, end: int, skip: Optional[np.ndarray] = None
) -> float:
    """Entity confidence: the mean over its tokens (not those in ``skip``) of the probability of
    each token's predicted tag."""
    rows = np.arange(start, end)
    if skip is not None:
        rows = rows[~skip[rows]]
    return float(probs[rows, tag_ids[rows]].mean())


def scored_spans(
    probs: np.ndarray, tag_ids: np.ndarray, tagset: TagSet, skip: Optional[np.ndarray] = None
) -> list[tuple[int, int, str, float]]:
    """The entities of the tag path ``tag_ids`` as ``(start, end, label, confidence)``: ``decode``'s spans,
    each with its ``span_confidence`` under ``probs``."""
    return [(s, e, label, span_confidence(probs, tag_ids, s, e, skip)) for s, e, label in decode(tag_ids, tagset)]
