"""Training through spaCy: overfitting with nlp.update, and an end-to-end `spacy train` run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import spacy
import srsly
from spacy.tokens import DocBin
from spacy.training import Example

from spacy_distilner.training.loss import IGNORE, cross_entropy, piece_targets, tag_names
from spacy_distilner.decode import TagSet
from spacy_distilner.tokenize import tokenize_texts
from tiny import make_tiny_encoder, training_docs

CONFIG = Path(__file__).parents[1] / "configs" / "conll_distilbert.cfg"


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_encoder(tmp_path_factory.mktemp("encoder"))


def test_piece_targets_first_piece_only(encoder_dir: Path) -> None:
    nlp = spacy.blank("en")
    doc = training_docs(nlp, 1)[0]  # "John Smith said the company Apple is in London ."
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(encoder_dir))
    pieces = tokenize_texts(tokenizer, [doc.text])[0]
    tagset = TagSet.from_id2label(dict(enumerate(tag_names(["LOC", "ORG", "PER"], "iob2"))))
    targets = piece_targets(doc, pieces, tagset)
    labelled = [(doc.text[s:e], tagset.tags[t]) for (s, e), t in zip(pieces.offsets, targets) if t != IGNORE]
    assert labelled[:3] == [("John", "B-PER"), ("Smith", "I-PER"), ("said", "O")]
    assert ("London", "B-LOC") in labelled and len(labelled) == len(doc)


def test_piece_targets_all_pieces(encoder_dir: Path) -> None:
    from spacy.tokens import Span
    from transformers import AutoTokenizer

    nlp = spacy.blank("en")
    doc = nlp.make_doc("Smithsonian went to Yorkshire today")
    doc.set_ents([Span(doc, 0, 1, "PER"), Span(doc, 3, 4, "LOC")], default="outside")
    tokenizer = AutoTokenizer.from_pretrained(str(encoder_dir))
    pieces = tokenize_texts(tokenizer, [doc.text])[0]
    tagset = TagSet.from_id2label(dict(enumerate(tag_names(["LOC", "PER"], "iob2"))))
    first = [tagset.tags[t] if t != IGNORE else None for t in piece_targets(doc, pieces, tagset, "first")]
    every = [tagset.tags[t] for t in piece_targets(doc, pieces, tagset, "all")]
    assert len(pieces) > len(doc)  # the tiny vocabulary splits the names into several pieces
    for (s, e), f, a in zip(pieces.offsets, first, every):
        word = doc.char_span(s, e, alignment_mode="expand")[0]
        if s == word.idx:
            assert a == f  # first pieces keep their token's tag
        else:
            assert f is None and a == ("O" if word.ent_type_ == "" else f"I-{word.ent_type_}")
    bilou = TagSet.from_id2label(dict(enumerate(tag_names(["LOC"], "bilou"))))
    with pytest.raises(ValueError, match="D020"):
        piece_targets(doc, pieces, bilou, "all")


def test_cross_entropy_gradient_matches_finite_differences() -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 3, 4)).astype(np.float64)
    targets = np.array([[0, 3, IGNORE], [2, IGNORE, 1]])
    loss, grad = cross_entropy(logits, targets, label_smoothing=0.1)
    eps = 1e-3
    bumped = logits.copy()
    bumped[0, 1, 2] += eps
    assert (cross_entropy(bumped, targets, 0.1)[0] - loss) / eps == pytest.approx(grad[0, 1, 2], rel=1e-2)
    assert not grad[0, 2].any()


@pytest.mark.parametrize("scheme", ["iob2", "bilou"])
def test_overfit_small_data(encoder_dir: Path, scheme: str) -> None:
    nlp = spacy.blank("en")
    nlp.add_pipe("distilner", config={"model": str(encoder_dir), "tag_scheme": scheme, "head_lr_scale": 5.0})
    examples = [Example(nlp.make_doc(d.text), d) for d in training_docs(nlp, 12)]
    optimizer = nlp.initialize(lambda: examples)
    assert nlp.get_pipe("distilner").labels == ("LOC", "ORG", "PER")
    first = None
    for _ in range(100):
        losses = nlp.update(examples, sgd=optimizer)
        first = losses["distilner"] if first is None else first
    assert losses["distilner"] < first / 10
    scores = nlp.evaluate(examples)
    assert scores["ents_f"] == pytest.approx(1.0)


def test_spacy_train_end_to_end(encoder_dir: Path, tmp_path: Path) -> None:
    nlp = spacy.blank("en")
    docs = training_docs(nlp, 30)
    DocBin(docs=docs[:24]).to_disk(tmp_path / "train.spacy")
    DocBin(docs=docs[24:]).to_disk(tmp_path / "dev.spacy")
    cmd = [
        sys.executable, "-m", "spacy", "train", str(CONFIG), "--output", str(tmp_path / "out"),
        "--paths.train", str(tmp_path / "train.spacy"), "--paths.dev", str(tmp_path / "dev.spacy"),
        "--paths.encoder", str(encoder_dir), "--training.max_epochs", "0", "--training.max_steps", "40",
        "--training.eval_frequency", "20", "--training.batcher.size", "100",
        "--training.optimizer.learn_rate.warmup_steps", "2", "--training.optimizer.learn_rate.total_steps", "40",
        "--training.optimizer.learn_rate.initial_rate", "0.001",
        "--components.distilner.max_length", "128",  # the tiny encoder's positions (the config's 256 is refused)
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line.split() for line in result.stdout.splitlines() if line.strip()[:1].isdigit()]
    losses = [float(r[2]) for r in rows]
    assert losses[-1] < losses[1]  # row 0 is the evaluation before any update
    best = spacy.load(tmp_path / "out" / "model-best")
    assert best.meta["performance"]["ents_f"] > 0.5
    assert best.get_pipe("distilner").labels == ("LOC", "ORG", "PER")
    doc = best("Mary said the company Google is in Paris .")
    assert [e.label_ for e in doc.ents] == ["PER", "ORG", "LOC"]
    model_dir = tmp_path / "out" / "model-best" / "distilner" / "model"
    assert srsly.read_json(model_dir / "distilner.json")["languages"] == ["en"]
    french = spacy.blank("fr")
    french.add_pipe("distilner", config={"model": str(model_dir)})
    with pytest.warns(UserWarning, match="W002|language is 'fr'"):
        french("Marie est à Paris .")
