"""Each setting is declared once: the Settings dataclass, the factory's default config and the README agree."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest
import spacy

from spacy_distilner.settings import Settings, choices, default_config

README = Path(__file__).parents[1] / "README.md"


def _readme_settings() -> set[str]:
    """The names in the first column of the README's config table."""
    table = README.read_text(encoding="utf-8").split("| config | default | meaning |", 1)[1].split("\n\n", 1)[0]
    names: set[str] = set()
    for line in table.splitlines()[2:]:
        names.update(re.findall(r"`([a-z_]+)`", line.split("|")[1]))
    return names


def test_factory_config_dataclass_and_readme_name_the_same_settings() -> None:
    declared = {f.name for f in fields(Settings)}
    factory = spacy.blank("en").get_factory_meta("distilner").default_config
    assert set(factory) - {"scorer"} == declared
    assert set(default_config()) - {"scorer"} == declared
    assert _readme_settings() == declared


def test_choices_come_from_the_literal_types() -> None:
    assert choices()["decoding"] == ("viterbi", "greedy")
    assert set(choices()) == {"backend", "precision", "pooling", "decoding", "caps_view", "ents_mode", "tag_scheme", "label_pieces"}


@pytest.mark.parametrize(
    "change, code",
    [({"pooling": "mean"}, "D009"), ({"backend": "onnx", "precision": "bf16"}, "D018"), ({"threshold": 1.5}, "D013")],
)
def test_bad_settings_are_refused_with_their_code(change: dict, code: str) -> None:
    with pytest.raises(ValueError, match=code):
        Settings(**change)


def test_the_factory_validates_types_from_the_dataclass() -> None:
    nlp = spacy.blank("en")
    with pytest.raises(Exception, match="max_batch_tokens"):
        nlp.add_pipe("distilner", config={"max_batch_tokens": "many"})
    with pytest.raises(Exception, match="not_a_setting"):
        nlp.add_pipe("distilner", config={"not_a_setting": 1})
