"""Starting from a trained model with another label set: fresh head, rows copied through ``head_label_map``."""

from __future__ import annotations

from pathlib import Path

import pytest
import spacy
import torch
from spacy.training import Example

from spacy_distilner.loading import load_classifier
from spacy_distilner.training.heads import init_head_rows, load_for_training
from tiny import make_tiny_encoder, make_tiny_model, training_docs

WNUT_TAGS = ("O", "B-corporation", "I-corporation", "B-person", "I-person", "B-product", "I-product")
LABEL_MAP = {"person": "PER", "corporation": "ORG"}


def _rows(model: torch.nn.Module, tags: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """Each tag's head row: weight and bias concatenated."""
    head = model.classifier
    return {tag: torch.cat([head.weight[i], head.bias[i : i + 1]]).detach() for i, tag in enumerate(tags)}


def _stored_rows(path: Path) -> dict[str, torch.Tensor]:
    """The head rows of the token classifier stored in ``path``, by tag."""
    model = load_classifier(path)
    return _rows(model, tuple(model.config.id2label.values()))


def test_mapped_rows_are_copied_and_the_others_fresh(iob_dir: Path) -> None:
    base = _stored_rows(iob_dir)
    torch.manual_seed(0)
    fresh = _rows(load_for_training(iob_dir, WNUT_TAGS), WNUT_TAGS)
    torch.manual_seed(0)
    model = load_for_training(iob_dir, WNUT_TAGS)
    copied = init_head_rows(model, iob_dir, LABEL_MAP)
    assert copied == {
        "O": "O", "B-corporation": "B-ORG", "I-corporation": "I-ORG", "B-person": "B-PER", "I-person": "I-PER"
    }
    rows = _rows(model, WNUT_TAGS)
    for new, old in copied.items():
        assert torch.equal(rows[new], base[old])
    for tag in ("B-product", "I-product"):
        assert torch.equal(rows[tag], fresh[tag])
        assert not any(torch.equal(rows[tag], row) for row in base.values())


def test_unmapped_labels_match_by_name(iob_dir: Path) -> None:
    model = load_for_training(iob_dir, ("O", "B-LOC", "I-LOC", "B-event", "I-event"))
    assert init_head_rows(model, iob_dir, {}) == {"O": "O", "B-LOC": "B-LOC", "I-LOC": "I-LOC"}


def test_a_same_sized_head_for_other_tags_is_not_kept(iob_dir: Path) -> None:
    tags = ("O",) + tuple(f"{p}-{lab}" for lab in ("w", "x", "y", "z") for p in "BI")  # 9 tags, as in iob_dir
    base = load_classifier(iob_dir).classifier.weight
    model = load_for_training(iob_dir, tags)
    assert model.classifier.weight.shape == base.shape
    assert not torch.allclose(model.classifier.weight, base)
    assert model.classifier.weight.std() < base.std() / 10  # fresh init, not the stored (scaled) head
    kept = load_for_training(iob_dir, tuple(load_classifier(iob_dir).config.id2label.values()))
    assert torch.equal(kept.classifier.weight, base)


def test_bare_encoder_has_nothing_to_copy(tmp_path: Path) -> None:
    encoder = make_tiny_encoder(tmp_path / "encoder")
    assert init_head_rows(load_for_training(encoder, WNUT_TAGS), encoder, LABEL_MAP) == {}


def test_component_option_and_parameter_report(tmp_path: Path) -> None:
    base_dir = make_tiny_model(tmp_path / "base")
    nlp = spacy.blank("en")
    pipe = nlp.add_pipe("distilner", config={"model": str(base_dir), "head_label_map": LABEL_MAP})
    examples = [Example(nlp.make_doc(d.text), d) for d in training_docs(nlp, 4)]
    nlp.initialize(lambda: examples)  # labels LOC, ORG, PER: all copied by name
    base_rows = _stored_rows(base_dir)
    for tag, row in _rows(pipe.hf_model, pipe.tag_labels).items():
        assert torch.equal(row, base_rows[tag])
    report = nlp.meta["distilner_parameters"]
    assert report["trainable"] == report["total"] == sum(p.numel() for p in pipe.hf_model.parameters())


def test_lora_report_in_meta(tmp_path: Path) -> None:
    pytest.importorskip("peft")
    nlp = spacy.blank("en")
    nlp.add_pipe("distilner", config={"model": str(make_tiny_encoder(tmp_path / "enc")), "lora_r": 2})
    examples = [Example(nlp.make_doc(d.text), d) for d in training_docs(nlp, 4)]
    nlp.initialize(lambda: examples)
    nlp.to_disk(tmp_path / "pipe")
    report = spacy.load(tmp_path / "pipe").meta["distilner_parameters"]
    assert 0 < report["trainable"] < report["total"] and report["share"] < 0.5
