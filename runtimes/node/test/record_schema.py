"""Write ``record-schema.json``: the JSON schema of the record that ``annotate`` writes per text
(``spacy_distilner.entity_record.DocRecord``, with its entity and token records), which ``model.test.js``
checks the Node runtime's records against.

    python runtimes/node/test/record_schema.py   # rewrites it; tests/test_node_runtime.py checks it is current
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SCHEMA = Path(__file__).with_name("record-schema.json")


def schema() -> dict[str, Any]:
    """The JSON schema of ``DocRecord``, as pydantic (and so the server's OpenAPI document) gives it."""
    from pydantic import TypeAdapter

    from spacy_distilner.entity_record import DocRecord

    return TypeAdapter(DocRecord).json_schema()


if __name__ == "__main__":
    SCHEMA.write_text(json.dumps(schema(), indent=2, ensure_ascii=False) + "\n", encoding="utf8")
