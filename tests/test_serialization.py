"""A pipeline restored from bytes saves, pickles, copies and forks like the one it came from,
under both precision decisions and on torch and ONNX Runtime."""

from __future__ import annotations

import copy
import pickle
from pathlib import Path
from typing import Callable

import pytest
import spacy
from spacy.language import Language

from tiny import TEXTS

pytestmark = pytest.mark.usefixtures("decision")  # every test under the fp32 and the bf16 decision

Entities = list[list[tuple[int, int, str]]]


def _entities(nlp: Language, **pipe: int) -> Entities:
    return [[(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in nlp.pipe(TEXTS, **pipe)]


def _from_bytes(nlp: Language) -> Language:
    restored = spacy.blank("en")
    backend = nlp.config["components"]["distilner"]["backend"]
    restored.add_pipe("distilner", config={"model": "no/such/dir", "backend": backend})
    return restored.from_bytes(nlp.to_bytes())


@pytest.fixture(params=["torch", "onnx"])
def original(request: pytest.FixtureRequest, iob_dir: Path) -> Language:
    nlp = spacy.blank("en")
    nlp.add_pipe("distilner", config={"model": str(iob_dir), "backend": request.param})
    return nlp


def _from_disk(nlp: Language, tmp_path: Path) -> Language:
    nlp.to_disk(tmp_path / "saved")
    return spacy.load(tmp_path / "saved")


COPIES: dict[str, Callable[[Language, Path], Language]] = {
    "to_bytes": lambda nlp, _: _from_bytes(nlp),
    "to_disk": _from_disk,
    "pickle": lambda nlp, _: pickle.loads(pickle.dumps(nlp)),
    "deepcopy": lambda nlp, _: copy.deepcopy(nlp),
}


@pytest.mark.parametrize("how", list(COPIES))
def test_a_pipeline_restored_from_bytes_copies_like_the_original(
    original: Language, tmp_path: Path, how: str
) -> None:
    expected = _entities(original)
    assert any(expected)  # the comparison is not vacuous
    restored = _from_bytes(original)
    assert _entities(restored) == expected
    assert _entities(COPIES[how](restored, tmp_path)) == expected


def test_a_pipeline_restored_from_bytes_forks(original: Language) -> None:
    restored = _from_bytes(original)
    assert _entities(restored, n_process=2, batch_size=1) == _entities(original)
