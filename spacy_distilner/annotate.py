"""Stage 5 — annotate: write entities and scores onto Docs; retry a failing batch one item at a time."""

from __future__ import annotations

from typing import Callable, Iterable, Iterator, Optional, Sequence, TypeVar

import numpy as np

from spacy.tokens import Doc, Span

from .settings import EntsMode

T = TypeVar("T")
R = TypeVar("R")


def write_entities(
    doc: Doc,
    spans: Sequence[tuple[int, int, str, float]],
    mode: EntsMode,
    spans_key: str,
) -> None:
    """Set ``(start, end, label, confidence)`` entities on ``doc``.

    ``overwrite`` replaces ``doc.ents``; ``keep`` adds only entities that do not
    overlap existing ones; ``spans`` leaves ``doc.ents`` alone and writes to
    ``doc.spans[spans_key]``. ``span._.confidence`` is set on every written span.
    """
    new = []
    for start, end, label, conf in spans:
        span = Span(doc, start, end, label=label)
        span._.confidence = conf
        new.append(span)
    if mode == "spans":
        doc.spans[spans_key] = new
    elif mode == "keep":
        taken = np.zeros(len(doc), dtype=bool)
        for ent in doc.ents:
            taken[ent.start : ent.end] = True
        doc.ents = sorted(list(doc.ents) + [s for s in new if not taken[s.start : s.end].any()])
    else:
        doc.ents = new


def passes(confidence: Optional[float], threshold: float) -> bool:
    """Whether an entity is kept at ``threshold``: its confidence is at least the threshold (an
    entity without one, e.g. from another component, is always kept)."""
    return confidence is None or confidence >= threshold


def run_or_retry_alone(
    batch: Sequence[T], run: Callable[[Sequence[T]], Iterable[R]], failed: Callable[[T, Exception], Iterable[R]]
) -> Iterator[R]:
    """``run(batch)``'s results; when it raises, each item run again on its own, so that only the items
    that fail alone reach ``failed(item, error)`` (whose results stand in for theirs), and the others
    keep their results."""
    try:
        results = list(run(batch))
    except Exception as err:
        if len(batch) == 1:
            yield from failed(batch[0], err)
        else:
            for item in batch:
                yield from run_or_retry_alone([item], run, failed)
        return
    yield from results
