"""LoRA fine-tuning (peft) on tiny models: trainable share, training, merged save vs. base + adapter."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import spacy
import torch
from spacy.language import Language
from spacy.training import Example

from spacy_distilner.loading import load_classifier
from spacy_distilner.training.heads import load_with_adapter
from spacy_distilner.training.lora import apply_lora, trainable_report
from tiny import make_tiny_encoder, make_tiny_model, training_docs

pytest.importorskip("peft")

TEXTS = ["Mary said the company Google is in Paris .", "john smith went to new york and london today ."]
LABELS = ["LOC", "ORG", "PER", "corporation", "group", "product"]  # 13 IOB2 tags


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_encoder(tmp_path_factory.mktemp("encoder"))


def _train(nlp: Language, steps: int, learn_rate: float) -> list[float]:
    """Initialize on ``training_docs`` and run ``steps`` updates; the loss of each step."""
    examples = [Example(nlp.make_doc(d.text), d) for d in training_docs(nlp, 12)]
    optimizer = nlp.initialize(lambda: examples)
    optimizer.learn_rate = learn_rate
    return [nlp.update(examples, sgd=optimizer)["distilner"] for _ in range(steps)]


@pytest.fixture(scope="module")
def lora_run(encoder_dir: Path) -> tuple[Language, list[float]]:
    nlp = spacy.blank("en")
    config = {"model": str(encoder_dir), "lora_r": 4, "lora_alpha": 8, "lora_dropout": 0.0}
    nlp.add_pipe("distilner", config=config)
    return nlp, _train(nlp, 50, 5e-3)


@pytest.fixture(scope="module")
def saved(lora_run: tuple[Language, list[float]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("lora_pipeline")
    lora_run[0].to_disk(path)
    return path


def test_trainable_share_is_small_and_head_trainable(tmp_path: Path) -> None:
    model = apply_lora(load_classifier(make_tiny_model(tmp_path / "clf")), r=2, alpha=4, dropout=0.1)
    report = trainable_report(model)
    assert 0 < report["trainable"] < report["total"] and report["share"] < 0.1
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert any(".classifier.modules_to_save." in name for name in trainable)
    assert all("lora_" in name or ".classifier." in name for name in trainable)


def test_lora_training_reduces_loss_and_freezes_the_encoder(lora_run: tuple[Language, list[float]]) -> None:
    nlp, losses = lora_run
    assert losses[-1] < losses[0] / 5
    peft_model = nlp.get_pipe("distilner").engine.hf_model
    frozen = [p for p in peft_model.parameters() if not p.requires_grad]
    assert frozen and all(p.grad is None for p in frozen)
    assert type(nlp.get_pipe("distilner").hf_model).__name__ == "DistilBertForTokenClassification"


def test_merged_pipeline_and_base_plus_adapter_agree(
    lora_run: tuple[Language, list[float]], saved: Path, encoder_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "peft", None)  # loading the merged pipeline must not import peft
        # fp32 weights whatever the CPU decides: the merge is checked to fp32 precision
        loaded = spacy.load(saved, config={"components": {"distilner": {"precision": "fp32"}}})
        docs = list(loaded.pipe(TEXTS))
    for doc, trained in zip(docs, lora_run[0].pipe(TEXTS)):
        np.testing.assert_allclose(doc._.ner_probs, trained._.ner_probs, atol=1e-5)
    pipe = loaded.get_pipe("distilner")
    inputs = pipe.hf_tokenizer(TEXTS, padding=True, return_tensors="pt")
    adapted = load_with_adapter(encoder_dir, saved / "distilner" / "model" / "adapter")
    with torch.no_grad():
        merged_probs = pipe.hf_model.eval()(**inputs).logits.softmax(-1)
        adapter_probs = adapted(**inputs).logits.softmax(-1)
    torch.testing.assert_close(adapter_probs, merged_probs, atol=1e-5, rtol=0)


def test_adapter_is_small(saved: Path) -> None:
    model_dir = saved / "distilner" / "model"
    adapter = {p.name: p.stat().st_size for p in (model_dir / "adapter").iterdir()}
    assert {"adapter_model.safetensors", "adapter_config.json"} <= set(adapter)
    assert not any(name.endswith((".bin", ".pt")) for name in adapter)
    assert sum(adapter.values()) < (model_dir / "model.safetensors").stat().st_size / 5


def test_full_fine_tuning_replaces_a_trained_head(iob_dir: Path, tmp_path: Path) -> None:
    nlp = spacy.blank("en")
    nlp.add_pipe("distilner", config={"model": str(iob_dir)})  # a 9-tag classifier; lora_r = 0
    examples = [Example(nlp.make_doc(d.text), d) for d in training_docs(nlp, 12)]
    pipe = nlp.get_pipe("distilner")
    pipe.initialize(lambda: examples, labels=LABELS)
    assert pipe.hf_model.classifier.weight.shape[0] == 13 == len(pipe.tag_labels)
    assert all(p.requires_grad for p in pipe.hf_model.parameters())
    optimizer = nlp.create_optimizer()
    losses = [nlp.update(examples, sgd=optimizer)["distilner"] for _ in range(10)]
    assert losses[-1] < losses[0]
    nlp.to_disk(tmp_path)
    assert not (tmp_path / "distilner" / "model" / "adapter").exists()
    assert spacy.load(tmp_path).get_pipe("distilner").labels == tuple(sorted(LABELS))
