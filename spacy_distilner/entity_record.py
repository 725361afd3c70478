"""The JSON record of an annotated Doc and of each of its entities, declared once.

``distilner annotate``'s JSON lines, the server's answers, the rows Ray writes and the Node runtime's
output are :class:`DocRecord` s; ``pipeline()``'s entity dicts are :class:`EntityRecord` s under
transformers' key names (``hf_api.HF_KEYS``). The server's response model is these types, Ray's Arrow
schema is derived from them (``distributed.arrow_type``), and ``runtimes/node/test/record-schema.json``
(their JSON schema, written by ``runtimes/node/test/record_schema.py``) holds the Node tests to them.
"""

from typing import Any, Optional, Sequence

from spacy.tokens import Doc, Span
from typing_extensions import NotRequired, TypedDict, get_type_hints

META_KEY = "meta"  # doc.user_data key of a record's meta


class EntityRecord(TypedDict):
    """An entity: characters ``[start, end)`` of the text, its label, its text, and its confidence
    (``span._.confidence``; null for an entity that another component set)."""

    start: int
    end: int
    label: str
    text: str
    confidence: Optional[float]


class TokenRecord(TypedDict):
    """A token: its text and characters ``[start, end)``, and the probability of each tag."""

    text: str
    start: int
    end: int
    probs: dict[str, float]


class DocRecord(TypedDict):
    """A text, its meta (as read with it; null where there is none) and its entities; per-token tag
    probabilities only where asked for (``token_scores``)."""

    text: str
    meta: Any
    entities: list[EntityRecord]
    tokens: NotRequired[list[TokenRecord]]


def record_fields(record: type) -> dict[str, Any]:
    """The fields of a record type and their types, in order (``NotRequired`` unwrapped)."""
    return get_type_hints(record)


def entity_to_json(span: Span) -> EntityRecord:
    """The record of an entity."""
    return EntityRecord(
        start=span.start_char, end=span.end_char, label=span.label_, text=span.text, confidence=span._.confidence
    )


def doc_to_json(doc: Doc, tag_labels: Optional[Sequence[str]] = None) -> DocRecord:
    """Text, meta (``doc.user_data["meta"]``) and entities; per-token tag probabilities if ``tag_labels``."""
    record = DocRecord(text=doc.text, meta=doc.user_data.get(META_KEY), entities=[entity_to_json(e) for e in doc.ents])
    if tag_labels is not None:
        record["tokens"] = [
            TokenRecord(text=t.text, start=t.idx, end=t.idx + len(t), probs=dict(zip(tag_labels, row.tolist())))
            for t, row in zip(doc, doc._.ner_probs)
        ]
    return record
