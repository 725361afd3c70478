"""Mixed training units: whole documents, runs of sentences and single sentences of the same documents."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin
from spacy.util import registry

from spacy_distilner.training.units import MixedUnits, split_units
from test_evaluate import conll_documents


@pytest.fixture()
def docbin(tmp_path: Path) -> Path:
    nlp = spacy.blank("en")
    DocBin(docs=conll_documents(tmp_path, nlp)).to_disk(tmp_path / "train.spacy")
    return tmp_path / "train.spacy"


def _units(docbin: Path, **weights: float) -> list:
    reader = registry.readers.get("spacy_distilner.MixedUnits.v1")(str(docbin), **weights)
    return [eg.reference for eg in reader(spacy.blank("en"))]


def test_kinds_keep_every_word_and_entity(docbin: Path) -> None:
    nlp = spacy.blank("en")
    docs = list(DocBin().from_disk(docbin).get_docs(nlp.vocab))
    words = [t.text for d in docs for t in d]
    ents = [(e.text, e.label_) for d in docs for e in d.ents]
    for kind, n_units in (("docs", 2), ("sentences", 5)):
        units = [u for d in docs for u in split_units(d, kind, random.Random(0))]
        assert len(units) == n_units
        assert [t.text for u in units for t in u] == words
        assert [(e.text, e.label_) for u in units for e in u.ents] == ents
    runs = [u for d in docs for u in split_units(d, "runs", random.Random(0), max_run=2)]
    assert [len(list(u.sents)) for u in runs] == [2, 1, 2]
    assert [t.text for u in runs for t in u] == words


def test_sample_mode_draws_anew_each_epoch_and_all_mode_is_fixed(docbin: Path) -> None:
    reader = MixedUnits(docbin, {"docs": 1.0, "sentences": 1.0}, seed=0)
    nlp = spacy.blank("en")
    epochs = [[len(eg.reference) for eg in reader(nlp)] for _ in range(8)]
    assert len({tuple(e) for e in epochs}) > 1  # another draw per epoch
    assert all(sum(e) == sum(epochs[0]) for e in epochs)  # always all the words
    both = _units(docbin, docs=1.0, runs=0.0, sentences=1.0, mode="all")
    assert len(both) == 2 + 5
    assert [len(d) for d in both] == [len(d) for d in _units(docbin, docs=1.0, runs=0.0, sentences=1.0, mode="all")]


@pytest.mark.parametrize("bad", [{"docs": -1.0}, {"docs": 0.0, "runs": 0.0, "sentences": 0.0}])
def test_bad_weights_are_refused(docbin: Path, bad: dict) -> None:
    with pytest.raises(ValueError, match="weights"):
        MixedUnits(docbin, bad)


def test_training_config_uses_mixed_units() -> None:
    from spacy.util import load_config

    config = load_config(Path(__file__).resolve().parents[1] / "configs" / "conll_distilbert.cfg")
    assert config["corpora"]["train"]["@readers"] == "spacy_distilner.MixedUnits.v1"
    assert config["corpora"]["dev"]["mode"] == "all"
