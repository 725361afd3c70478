"""Faults at the edges: impossible settings, unwritable caches, native memory over long streams."""

from __future__ import annotations

from pathlib import Path

import pytest
import spacy

from spacy_distilner.settings import RANGES, Settings


@pytest.mark.parametrize(
    "setting, value",
    [
        ("num_threads", 0),
        ("num_threads", -1),
        ("num_threads", 2.5),
        ("max_length", 0),
        ("max_length", -5),
        ("stride", -1),
        ("max_batch_tokens", 0),
        ("threshold", 1.5),
        ("label_smoothing", 1.0),
        ("lora_dropout", -0.1),
        ("lora_r", -1),
    ],
)
def test_out_of_range_settings_name_the_setting_and_its_range(setting: str, value: object) -> None:
    with pytest.raises(ValueError, match=rf"D013\] Setting {setting} must be .*(>=|in \[).*got {value}"):
        Settings(**{setting: value})


def test_every_numeric_setting_has_a_range() -> None:
    numeric = {name for name, value in Settings().as_dict().items() if type(value) in (int, float)}
    numeric |= {"max_length", "stride", "num_threads"}  # null by default
    assert numeric == set(RANGES)


def test_null_and_in_range_values_are_accepted() -> None:
    Settings(num_threads=None, max_length=None, stride=None)
    Settings(num_threads=1, max_length=1, stride=0, threshold=1.0, label_smoothing=0.0)


def test_the_factory_refuses_num_threads_zero_before_loading(iob_dir: Path) -> None:
    with pytest.raises(ValueError, match="D013.*num_threads"):
        spacy.blank("en").add_pipe("distilner", config={"model": str(iob_dir), "num_threads": 0})


@pytest.mark.parametrize("max_length", [65, 1024, 2])
def test_max_length_is_checked_against_the_loaded_model(iob_dir: Path, max_length: int) -> None:
    """The tiny model has 64 positions and 2 special tokens: 3 … 64 run, others name max_length and the range
    when the model is loaded (on first use)."""
    pipe = spacy.blank("en").add_pipe("distilner", config={"model": str(iob_dir), "max_length": max_length})
    with pytest.raises(ValueError, match=r"D013\] Setting max_length must be an integer in \[3, 64\] for this model"):
        pipe.engine


@pytest.mark.parametrize("max_length", [3, 64])
def test_max_length_at_the_bounds_runs(iob_dir: Path, max_length: int) -> None:
    nlp = spacy.blank("en")
    nlp.add_pipe("distilner", config={"model": str(iob_dir), "max_length": max_length})
    doc = nlp("John Smith flew from London to New York on Tuesday to meet the people of Apple . " * 4)
    assert len(doc._.ner_probs) == len(doc)


def test_a_short_max_length_blames_max_length_not_the_models_stored_stride(tmp_path: Path, iob_dir: Path) -> None:
    """A model that stored stride 16 cannot run max_length 10: the error names max_length and how to go lower."""
    nlp = spacy.blank("en")
    nlp.add_pipe("distilner", config={"model": str(iob_dir), "stride": 16})
    nlp.to_disk(tmp_path / "p")
    model = str(tmp_path / "p" / "distilner" / "model")  # its distilner.json keeps stride 16
    short = spacy.blank("en").add_pipe("distilner", config={"model": model, "max_length": 10})
    with pytest.raises(ValueError, match=r"Setting max_length must be an integer in \[19, 64\].*stored stride 16"):
        short.engine
    assert spacy.blank("en").add_pipe("distilner", config={"model": model, "max_length": 10, "stride": 2}).stride == 2
