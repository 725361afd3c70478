"""Temperature scaling: entities do not depend on T, the fitted T never raises the log-loss, ECE."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import spacy
from spacy.tokens import DocBin
from typer.testing import CliRunner

from spacy_distilner.cli import app
from spacy_distilner.decode import tag_path
from spacy_distilner.training.calibrate import EntityOutcomes, ece, outcomes
from tiny import IOB2, make_tiny_model, training_docs


def test_ece_of_calibrated_and_overconfident_scores() -> None:
    calibrated = EntityOutcomes(np.array([0.25] * 4 + [0.95] * 20), np.array([1, 0, 0, 0] + [1] * 19 + [0], dtype=float))
    assert ece(calibrated) == pytest.approx(0.0, abs=1e-12)
    overconfident = EntityOutcomes(np.array([0.95] * 4), np.array([1, 0, 1, 0], dtype=float))
    assert ece(overconfident) == pytest.approx(0.45)


def test_calibrate_fits_a_temperature(iob_dir: Path, tmp_path: Path) -> None:
    nlp = spacy.blank("en")
    nlp.add_pipe("distilner", config={"model": str(iob_dir)})
    nlp.to_disk(tmp_path / "pipeline")
    golds = training_docs(nlp, 12)
    DocBin(docs=golds).to_disk(tmp_path / "dev.spacy")
    args = ["calibrate", tmp_path / "pipeline", tmp_path / "dev.spacy", tmp_path / "calibrated", "--metrics", tmp_path / "metrics"]
    run = CliRunner().invoke(app, [str(arg) for arg in args])
    assert run.exit_code == 0, run.output
    result = json.loads(run.stdout)
    assert result["entities"] > 0
    assert result["log_loss_after"] <= result["log_loss_before"]  # T = 1 is on the grid
    assert json.loads((tmp_path / "metrics" / "calibration.json").read_text()) == result
    loaded = spacy.load(tmp_path / "calibrated").get_pipe("distilner")
    assert loaded.cfg["temperature"] == result["temperature"]
    # entities are decoded at T = 1: another temperature changes confidences only
    pipe = nlp.get_pipe("distilner")
    docs = list(nlp.pipe(g.text for g in golds))
    logits = [d._.ner_logits for d in docs]
    paths = [tag_path(x, pipe.tagset) for x in logits]
    one, three = (outcomes(logits, paths, docs, golds, pipe.tagset, t) for t in (1.0, 3.0))
    np.testing.assert_array_equal(one.correct, three.correct)
    assert not np.allclose(one.confidence, three.confidence)


def test_calibrate_pools_the_dev_set_in_several_casings(cased_calib_dir: Path, tmp_path: Path) -> None:
    nlp = spacy.blank("en")
    nlp.add_pipe("distilner", config={"model": str(cased_calib_dir)})
    nlp.to_disk(tmp_path / "pipeline")
    DocBin(docs=training_docs(nlp, 12)).to_disk(tmp_path / "dev.spacy")
    base = ["calibrate", tmp_path / "pipeline", tmp_path / "dev.spacy", tmp_path / "calibrated", "--metrics", tmp_path / "m"]
    one = CliRunner().invoke(app, [str(arg) for arg in base])
    both = CliRunner().invoke(app, [str(arg) for arg in [*base, "--casing", "as-given", "--casing", "upper"]])
    assert one.exit_code == both.exit_code == 0, both.output
    one_r, both_r = json.loads(one.stdout), json.loads(both.stdout)
    assert both_r["casings"] == ["as-given", "upper"] and set(both_r["per_casing"]) == {"as-given", "upper"}
    given, alone = both_r["per_casing"]["as-given"], one_r["per_casing"]["as-given"]
    assert (given["entities"], given["ece_before"]) == (alone["entities"], alone["ece_before"])  # same data at T = 1
    assert both_r["entities"] == sum(c["entities"] for c in both_r["per_casing"].values())
    assert CliRunner().invoke(app, [str(arg) for arg in [*base, "--casing", "camel"]]).exit_code != 0


@pytest.fixture(scope="module")
def cased_calib_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model whose tokenizer keeps case, so that UPPERCASED text reads differently."""
    return make_tiny_model(tmp_path_factory.mktemp("cased"), IOB2, seed=3, lowercase=False)
