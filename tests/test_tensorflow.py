"""The tensorflow backend: the same logits, probabilities and entities as torch, on tiny random models."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import spacy
from spacy.language import Language


TEXTS = [
    "John Smith went to New York with Apple in the United States today.",
    "",
    "Paris, Germany and the world: people of the year!",
    " ".join(["Google said John went to Paris."] * 30),  # several 64-piece windows
    "  two  spaces\n\nand a new line  ",
]


@pytest.fixture(scope="module")
def tensorflow() -> object:
    """TensorFlow: skipped with a reason where the extra is not installed, except on CI (``CI=true``)."""
    try:
        import tensorflow
    except ImportError:
        reason = "TensorFlow is not installed (pip install 'spacy-distilner[tensorflow]')"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return tensorflow


def _pipeline(model: Path, **config: object) -> Language:
    nlp = spacy.blank("en")
    nlp.add_pipe("distilner", config={"model": str(model), "precision": "fp32", **config})
    return nlp


@pytest.mark.parametrize("scheme", ["iob_dir", "bilou_dir"])
def test_same_logits_probs_and_entities_as_torch(
    tensorflow: object, scheme: str, request: pytest.FixtureRequest
) -> None:
    model = request.getfixturevalue(scheme)
    torch_nlp, tf_nlp = _pipeline(model), _pipeline(model, backend="tensorflow")
    assert tf_nlp.get_pipe("distilner").backend_info["backend"] == "tensorflow"
    n_ents = 0
    for a, b in zip(torch_nlp.pipe(TEXTS), tf_nlp.pipe(TEXTS)):
        assert a.text == b.text
        assert [(e.start, e.end, e.label_) for e in a.ents] == [(e.start, e.end, e.label_) for e in b.ents]
        n_ents += len(a.ents)
        if len(a):
            np.testing.assert_allclose(a._.ner_logits, b._.ner_logits, atol=1e-4)
            np.testing.assert_allclose(a._.ner_probs, b._.ner_probs, atol=1e-5)
        for x, y in zip(a.ents, b.ents):
            assert abs(x._.confidence - y._.confidence) < 1e-5
    assert n_ents > 10  # the comparison is not vacuous


def test_padded_rows_match_unpadded(tensorflow: object, iob_dir: Path) -> None:
    """Padding pieces change no logit of the real pieces (the attention mask is applied)."""
    backend = _pipeline(iob_dir, backend="tensorflow").get_pipe("distilner").engine.backend
    rng = np.random.default_rng(0)
    ids = rng.integers(5, 100, (2, 40))
    mask = np.ones_like(ids)
    mask[1, 25:] = 0
    both = backend.forward(ids, mask)
    alone = backend.forward(ids[1:, :25], mask[1:, :25])
    np.testing.assert_allclose(both[1, :25], alone[0], atol=1e-5)
    assert both.dtype == np.float32 and both.shape == (2, 40, 9)


def test_save_and_load_keeps_the_backend(tensorflow: object, iob_dir: Path, tmp_path: Path) -> None:
    """The graph is built from the safetensors read as numpy: no torch module is read to run or save."""
    from transformers import AutoModelForTokenClassification

    def no_module(*args: object, **kwargs: object) -> None:
        raise AssertionError("read the torch module")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(AutoModelForTokenClassification, "from_pretrained", no_module)
        nlp = _pipeline(iob_dir, backend="tensorflow")
        before = [[(e.start, e.end, e.label_) for e in doc.ents] for doc in nlp.pipe(TEXTS)]
        nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    assert loaded.get_pipe("distilner").backend_info["backend"] == "tensorflow"
    assert [[(e.start, e.end, e.label_) for e in doc.ents] for doc in loaded.pipe(TEXTS)] == before


def test_tensorflow_runs_fp32_only(iob_dir: Path) -> None:
    with pytest.raises(ValueError, match=r"\[D018\]"):
        _pipeline(iob_dir, backend="tensorflow", precision="int8")


def test_missing_tensorflow_is_a_coded_error(iob_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # import tensorflow raises ImportError
    nlp = _pipeline(iob_dir, backend="tensorflow")  # the model (and its backend) loads on first use
    with pytest.raises(ImportError, match=r"\[D025\].*spacy-distilner\[tensorflow\]"):
        nlp(TEXTS[0])


def test_torch_pipelines_do_not_import_tensorflow(tensorflow: object, iob_dir: Path) -> None:
    """transformers would import TensorFlow on the first model load where it is installed (+4 s, +500 MB),
    also where spacy-transformers (installed beside this suite) imported transformers while spaCy built the
    pipeline (``spacy_distilner/__init__.py``)."""
    import subprocess

    script = (
        "import os, sys, spacy\n"
        "nlp = spacy.blank('en')\n"
        "nlp.add_pipe('distilner', config={'model': sys.argv[1]})\n"
        "nlp('John went to Paris')\n"
        "print('tensorflow' in sys.modules, os.environ.get('USE_TF'))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "USE_TF"}
    out = subprocess.run([sys.executable, "-c", script, str(iob_dir)], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False 0"

