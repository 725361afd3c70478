"""``entity_record``: the records ``doc_to_json`` builds have the declared fields, in the declared order."""

from __future__ import annotations

import numpy as np
import spacy
from spacy.tokens import Span

from spacy_distilner.entity_record import DocRecord, EntityRecord, TokenRecord, doc_to_json, record_fields
from spacy_distilner.extensions import install_extensions


def test_records_have_the_declared_fields_in_order() -> None:
    install_extensions()
    doc = spacy.blank("en")("John Smith went to Paris")
    doc.ents = [Span(doc, 0, 2, label="PER"), Span(doc, 4, 5, label="LOC")]
    doc.ents[0]._.confidence = 0.75
    doc._.ner_probs = np.full((len(doc), 2), 0.5, dtype=np.float32)
    record = doc_to_json(doc, ("O", "B-PER"))
    assert list(record) == list(record_fields(DocRecord))
    assert [list(e) for e in record["entities"]] == [list(record_fields(EntityRecord))] * 2
    assert [list(t) for t in record["tokens"]] == [list(record_fields(TokenRecord))] * len(doc)
    assert record["entities"][0] == {"start": 0, "end": 10, "label": "PER", "text": "John Smith", "confidence": 0.75}
    assert record["entities"][1]["confidence"] is None  # an entity without a confidence (another component's)
    assert record["tokens"][1] == {"text": "Smith", "start": 5, "end": 10, "probs": {"O": 0.5, "B-PER": 0.5}}
    assert list(doc_to_json(doc)) == [name for name in record_fields(DocRecord) if name != "tokens"]
