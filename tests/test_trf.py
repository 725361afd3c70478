"""distilner beside a spacy-transformers ``transformer`` component (extra ``trf``), on tiny local models."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import spacy
from spacy.language import Language

from tiny import make_tiny_encoder

TEXTS = [
    "John Smith went to New York with Apple in the United States today.",
    " ".join(["Google said John went to Paris."] * 12),  # longer than one transformer span and one distilner window
    "",
]


@pytest.fixture(scope="module")
def spacy_transformers() -> object:
    """spacy-transformers: skipped with a reason where the extra is not installed, except on CI (``CI=true``)."""
    try:
        import spacy_transformers
    except ImportError:
        reason = "spacy-transformers is not installed (pip install 'spacy-distilner[trf]')"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return spacy_transformers


def _both(encoder_dir: Path, iob_dir: Path) -> Language:
    """A blank English pipeline: a ``transformer`` on the tiny encoder, then ``distilner``."""
    nlp = spacy.blank("en")
    trf = nlp.add_pipe(
        "transformer",
        config={
            "model": {
                "@architectures": "spacy-transformers.TransformerModel.v3",
                "name": str(encoder_dir),
                "tokenizer_config": {"use_fast": True},
                "get_spans": {"@span_getters": "spacy-transformers.strided_spans.v1", "window": 32, "stride": 24},
            }
        },
    )
    nlp.add_pipe("distilner", config={"model": str(iob_dir), "precision": "fp32"})
    trf.initialize(lambda: [], nlp=nlp)  # loads the encoder; distilner keeps its trained head
    return nlp


def _outputs(nlp: Language) -> list[tuple[list[tuple[int, int, str]], np.ndarray]]:
    """Per text: distilner's entities and the transformer's last hidden state (spans, pieces, width)."""
    out = []
    for doc in nlp.pipe(TEXTS):
        tensors = doc._.trf_data.tensors
        hidden = np.asarray(tensors[0]) if tensors else np.zeros((0, 0, 32))
        out.append(([(e.start_char, e.end_char, e.label_) for e in doc.ents], hidden))
    return out


def test_transformer_and_distilner_run_save_and_load(
    spacy_transformers: object, iob_dir: Path, tmp_path: Path
) -> None:
    nlp = _both(make_tiny_encoder(tmp_path / "encoder"), iob_dir)
    assert nlp.pipe_names == ["transformer", "distilner"]
    before = _outputs(nlp)
    assert any(ents for ents, _ in before)  # the tiny head tags something in these texts
    assert before[1][1].shape[0] > 1 and before[1][1].shape[-1] == 32  # several spans of the tiny encoder's width
    alone = spacy.blank("en")
    alone.add_pipe("distilner", config={"model": str(iob_dir), "precision": "fp32"})
    assert [ents for ents, _ in before] == [[(e.start_char, e.end_char, e.label_) for e in d.ents] for d in alone.pipe(TEXTS)]

    nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    assert loaded.pipe_names == ["transformer", "distilner"]
    after = _outputs(loaded)
    for (ents_a, hidden_a), (ents_b, hidden_b) in zip(before, after):
        assert ents_a == ents_b
        np.testing.assert_allclose(hidden_a, hidden_b, atol=1e-5)
