"""``spacy_distilner.pipeline`` gives the output of transformers' token-classification pipeline."""

from __future__ import annotations

from pathlib import Path

import pytest
import transformers
from transformers import AutoModelForTokenClassification, AutoTokenizer

from spacy_distilner import pipeline
from spacy_distilner.entity_record import EntityRecord, record_fields
from spacy_distilner.hf_api import HF_KEYS
from tiny import IOB2, make_tiny_model

pytestmark = pytest.mark.usefixtures("decision")  # every test under the fp32 and the bf16 decision

# space-separated words with punctuation split off, so spaCy tokens and HF words coincide
TEXTS = [
    "John Smith went to New York with Apple in the United States today .",
    "Mary said the company in London was new .",
    "Paris , Germany and the world : people of the year !",
    "the",
]


@pytest.fixture(scope="module")
def cased_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny cased model: HF's ``word`` is rebuilt from word pieces, which keeps case only then."""
    return make_tiny_model(tmp_path_factory.mktemp("cased"), IOB2, seed=0, lowercase=False)


@pytest.fixture(scope="module")
def reference(cased_dir: Path) -> list[list[dict]]:
    hf = transformers.pipeline(
        "token-classification",
        model=AutoModelForTokenClassification.from_pretrained(str(cased_dir)),
        tokenizer=AutoTokenizer.from_pretrained(str(cased_dir)),
        aggregation_strategy="first",
        device=-1,
    )
    return [hf(text) for text in TEXTS]


def _check_same(ours: list[dict], theirs: list[dict], decision: str) -> None:
    """Same entities as transformers' fp32 pipeline; scores as close as the decision's weights allow."""
    assert [set(e) for e in ours] == [set(e) for e in theirs]
    strip = [{k: e[k] for k in ("entity_group", "word", "start", "end")} for e in theirs]
    assert [{k: e[k] for k in ("entity_group", "word", "start", "end")} for e in ours] == strip
    for a, b in zip(ours, theirs):
        assert isinstance(a["score"], float)
        assert a["score"] == pytest.approx(float(b["score"]), abs=1e-5 if decision == "fp32" else 2e-2)


def test_matches_transformers_pipeline(cased_dir: Path, reference: list[list[dict]], decision: str) -> None:
    ner = pipeline(str(cased_dir), device="cpu", batch_size=2)
    assert sum(len(r) for r in reference) > 5  # the comparison is not vacuous
    batched = ner(TEXTS)
    assert len(batched) == len(TEXTS)
    for text, ours, theirs in zip(TEXTS, batched, reference):
        _check_same(ours, theirs, decision)
        _check_same(ner(text), theirs, decision)  # one string -> one list


def test_threshold_and_empty_inputs(cased_dir: Path, reference: list[list[dict]], decision: str) -> None:
    ner = pipeline(str(cased_dir), device="cpu", threshold=0.5)
    expected = [[e for e in r if e["score"] >= 0.5] for r in reference]
    assert 0 < sum(map(len, expected)) < sum(map(len, reference))
    for ours, theirs in zip(ner(TEXTS), expected):
        _check_same(ours, theirs, decision)
    assert ner("") == [] and ner([]) == []


def test_every_record_field_has_a_transformers_key() -> None:
    """``pipeline()``'s entity dicts are the entity records renamed: every field, each under one key."""
    assert sorted(HF_KEYS.values()) == sorted(record_fields(EntityRecord))


def test_bad_model_fails_on_creation(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="D001"):
        pipeline(str(tmp_path / "missing"))
