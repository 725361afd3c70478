"""Weight checkpoints during training and their average."""

from __future__ import annotations

from pathlib import Path

import pytest
import spacy
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from spacy_distilner.cli import app
from spacy_distilner.component import find_component
from spacy_distilner.training.checkpoints import average, create_checkpoint_callback, save_weights, select


def test_callback_saves_every_n_steps_from_start(iob_dir: Path, tmp_path: Path) -> None:
    nlp = spacy.blank("en")
    nlp.add_pipe("distilner", config={"model": str(iob_dir), "precision": "fp32"})
    callback = create_checkpoint_callback(str(tmp_path / "ckpt"), every=2, start=3)
    for step in range(8):
        callback(nlp, {"step": step, "epoch": 0})
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["step-000004.safetensors", "step-000006.safetensors"]
    assert [p.name for p in select([tmp_path / "ckpt"], from_step=5)] == ["step-000006.safetensors"]
    with pytest.raises(ValueError):
        create_checkpoint_callback(str(tmp_path), every=0)


def test_average_is_the_elementwise_mean(iob_dir: Path, tmp_path: Path) -> None:
    nlp = spacy.blank("en")
    pipe = nlp.add_pipe("distilner", config={"model": str(iob_dir), "precision": "fp32"})
    nlp.to_disk(tmp_path / "pipeline")
    weight = pipe.hf_model.classifier.weight
    original = weight.detach().clone()
    save_weights(nlp, tmp_path / "a.safetensors")
    with torch.no_grad():
        weight.add_(1.0)
    save_weights(nlp, tmp_path / "b.safetensors")
    averaged = average(tmp_path / "pipeline", tmp_path / "avg", [tmp_path / "a.safetensors", tmp_path / "b.safetensors"])
    torch.testing.assert_close(find_component(averaged).hf_model.classifier.weight, original + 0.5)
    reloaded = find_component(spacy.load(tmp_path / "avg", config={"components": {"distilner": {"precision": "fp32"}}}))
    torch.testing.assert_close(reloaded.hf_model.classifier.weight, original + 0.5)
    assert set(load_file(str(tmp_path / "a.safetensors"))) == set(reloaded.hf_model.state_dict())


def test_cli_averages_the_checkpoints_of_a_folder(iob_dir: Path, tmp_path: Path) -> None:
    """``distilner checkpoints average PIPELINE OUT FOLDER --from-step N``."""
    nlp = spacy.blank("en")
    pipe = nlp.add_pipe("distilner", config={"model": str(iob_dir), "precision": "fp32"})
    nlp.to_disk(tmp_path / "pipeline")
    weight = pipe.hf_model.classifier.weight
    with torch.no_grad():
        for step, value in ((1, 1.0), (2, 2.0), (3, 4.0)):
            weight.fill_(value)
            save_weights(nlp, tmp_path / "ckpt" / f"step-{step:06d}.safetensors")
    args = ["checkpoints", "average", str(tmp_path / "pipeline"), str(tmp_path / "avg"), str(tmp_path / "ckpt")]
    result = CliRunner().invoke(app, [*args, "--from-step", "2"])
    assert result.exit_code == 0, result.output
    assert "average of 2 checkpoints (step-000002.safetensors, step-000003.safetensors)" in result.stdout
    averaged = find_component(spacy.load(tmp_path / "avg", config={"components": {"distilner": {"precision": "fp32"}}}))
    torch.testing.assert_close(averaged.hf_model.classifier.weight, torch.full_like(weight, 3.0))
    result = CliRunner().invoke(app, [*args, "--from-step", "4"])
    assert result.exit_code == 2 and "no checkpoints from step 4 on" in result.stderr, result.output
