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


def _trained_pipe(encoder_dir: Path, n_docs: int, **config: object) -> tuple[spacy.Language, list[Example]]:
    nlp = spacy.blank("en")
    nlp.add_pipe("distilner", config={"model": str(encoder_dir), **config})
    examples = [Example(nlp.make_doc(d.text), d) for d in training_docs(nlp, n_docs)]
    return nlp, examples


@pytest.mark.parametrize("scheme", ["iob2", "bilou"])
def test_overfit_small_data(encoder_dir: Path, scheme: str) -> None:
    nlp, examples = _trained_pipe(encoder_dir, 12, tag_scheme=scheme, head_lr_scale=5.0)
    optimizer = nlp.initialize(lambda: examples)
    pipe = nlp.get_pipe("distilner")
    assert pipe.labels == ("LOC", "ORG", "PER")
    pointers = {name: p.data_ptr() for name, p in pipe.hf_model.named_parameters()}
    first = None
    for _ in range(100):
        losses = nlp.update(examples, sgd=optimizer)
        first = losses["distilner"] if first is None else first
    assert losses["distilner"] < first / 10
    assert {name: p.data_ptr() for name, p in pipe.hf_model.named_parameters()} == pointers  # stepped in place
    scores = nlp.evaluate(examples)
    assert scores["ents_f"] == pytest.approx(1.0)


def test_get_loss_is_each_batch_share_of_the_mean(encoder_dir: Path) -> None:
    """``get_loss(examples, (batch, logits))``: a float and a gradient shaped as the logits, zero where no
    labelled piece is; over all batches the losses add up to ``update``'s."""
    import numpy as np
    import torch

    from spacy_distilner.training.loss import gold_targets

    nlp, examples = _trained_pipe(encoder_dir, 6, max_batch_tokens=32, max_length=32)  # several batches
    nlp.initialize(lambda: examples)
    pipe = nlp.get_pipe("distilner")
    engine = pipe.engine
    pieces = tokenize_texts(engine.tokenizer, [eg.predicted.text for eg in examples])
    targets = gold_targets(examples, engine.tokenizer, engine.tagset, "first")
    n_valid = sum(int((t != IGNORE).sum()) for t in targets)
    batches = list(engine.batches(pieces, engine.windows(pieces)))
    assert len(batches) > 1
    total = 0.0
    torch.manual_seed(0)  # the same dropout as the update below
    for batch in batches:
        logits, _ = pipe.model.begin_update((batch.input_ids, batch.attention_mask))
        loss, d_logits = pipe.get_loss(examples, (batch, logits))
        assert isinstance(loss, float) and loss > 0 and d_logits.shape == logits.shape
        labelled = batch.gather(targets, IGNORE) != IGNORE
        assert not d_logits[~labelled].any()
        row, pos = np.argwhere(labelled)[0]
        probs = np.exp(logits[row, pos] - logits[row, pos].max())
        expected = probs / probs.sum() - np.eye(logits.shape[-1])[batch.gather(targets, IGNORE)[row, pos]]
        np.testing.assert_allclose(d_logits[row, pos], expected / n_valid, rtol=1e-5, atol=1e-7)
        total += loss
    torch.manual_seed(0)
    assert pipe.update(examples)["distilner"] == pytest.approx(total, rel=1e-5)


def test_finish_update_steps_the_weights_in_place(encoder_dir: Path) -> None:
    """The optimizer gets the parameters' and gradients' own memory (no copy) and steps it: same
    storage, new values, gradients zeroed; a frozen parameter (no gradient) is not passed."""
    import torch

    nlp, examples = _trained_pipe(encoder_dir, 4, freeze_embeddings=True)
    optimizer = nlp.initialize(lambda: examples)
    pipe = nlp.get_pipe("distilner")
    params = dict(pipe.hf_model.named_parameters())
    before = {name: (p.data_ptr(), p.detach().clone()) for name, p in params.items()}
    pipe.update(examples)
    grads = {name: p.grad.data_ptr() for name, p in params.items() if p.grad is not None}
    passed = {}

    def spy(key: tuple, weights: object, gradient: object, lr_scale: float = 1.0) -> tuple:
        passed[key[1]] = (weights.ctypes.data, gradient.ctypes.data)  # type: ignore[attr-defined]
        return optimizer(key, weights, gradient, lr_scale=lr_scale)

    pipe.finish_update(spy)  # type: ignore[arg-type]
    frozen = "distilbert.embeddings.word_embeddings.weight"
    assert passed == {name: (before[name][0], grads[name]) for name in params if name != frozen}
    for name, p in params.items():
        pointer, values = before[name]
        assert p.data_ptr() == pointer, name
        assert torch.equal(p, values) == (name == frozen), name
        assert p.grad is None if name == frozen else not p.grad.any()


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


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_apply_optimizer_in_place_or_through_copies(dtype: str) -> None:
    """CPU fp32 parameters are stepped in their own memory; others (other dtypes, other devices) go
    through float32 copies and back. Either way: the thinc step at the parameter's scale, gradients zeroed."""
    from types import SimpleNamespace

    import torch
    from thinc.api import SGD

    from spacy_distilner.backends.torch import apply_optimizer, thinc_model

    module = torch.nn.Linear(3, 2).to(getattr(torch, dtype))
    backend = SimpleNamespace(trainable=True, module=module, device="cpu", precision="fp32")
    model = thinc_model(backend, "fp32")
    module.weight.grad, module.bias.grad = torch.ones_like(module.weight), torch.full_like(module.bias, 2.0)
    before = {name: p.detach().clone() for name, p in module.named_parameters()}
    pointers = {name: p.data_ptr() for name, p in module.named_parameters()}
    apply_optimizer(model, SGD(0.1, L2=0.0, grad_clip=0.0), lambda name: 3.0 if name == "bias" else 1.0)
    assert torch.allclose(module.weight, before["weight"] - 0.1)
    assert torch.allclose(module.bias, before["bias"] - 0.1 * 3.0 * 2.0)
    assert {name: p.data_ptr() for name, p in module.named_parameters()} == pointers
    assert not module.weight.grad.any() and not module.bias.grad.any()
    assert module.weight.dtype == getattr(torch, dtype)
    assert thinc_model(SimpleNamespace(trainable=False), "fp32") is None
