"""The distilner component end to end on tiny random models."""

from __future__ import annotations

import json
import shutil
from importlib.metadata import entry_points
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
import spacy
from spacy.language import Language
from spacy.tokens import Doc, DocBin, Span
from spacy.training import Example

from spacy_distilner.backends import resolve_device
from tiny import BILOU, IOB2, TEXTS

pytestmark = pytest.mark.usefixtures("decision")  # every test under the fp32 and the bf16 decision

def _check_invariants(doc: Doc, n_tags: int) -> None:
    """Every token has scores; entities sit on token boundaries and do not overlap."""
    assert doc._.ner_probs.shape == (len(doc), n_tags)
    assert doc._.ner_logits.dtype == np.float32
    np.testing.assert_allclose(doc._.ner_probs.sum(-1), 1.0, rtol=1e-5)
    for token in doc:
        assert 0.0 <= token._.ner_confidence <= 1.0 + 1e-6
        assert token._.ner_entropy >= 0.0
    last_end = 0
    for ent in doc.ents:
        assert ent.start >= last_end and 0.0 <= ent._.confidence <= 1.0
        last_end = ent.end


def test_factory_entry_point() -> None:
    names = {ep.name for ep in entry_points(group="spacy_factories")}
    assert "distilner" in names


def _entity_tags(length: int, label: str, bilou: bool) -> list[str]:
    """The tags a valid path gives an entity of ``length`` tokens."""
    if not bilou:
        return [f"B-{label}"] + [f"I-{label}"] * (length - 1)
    if length == 1:
        return [f"U-{label}"]
    return [f"B-{label}"] + [f"I-{label}"] * (length - 2) + [f"L-{label}"]


@pytest.mark.parametrize("decoding", ["viterbi", "greedy"])
@pytest.mark.parametrize("fixture,tags", [("iob_dir", IOB2), ("bilou_dir", BILOU)])
def test_tags_and_scores(request: pytest.FixtureRequest, fixture: str, tags: tuple, decoding: str) -> None:
    nlp = spacy.blank("en")
    model = str(request.getfixturevalue(fixture))
    pipe = nlp.add_pipe("distilner", config={"model": model, "decoding": decoding})
    assert pipe.labels == ()  # loaded on first use
    docs = list(nlp.pipe(TEXTS, batch_size=2))
    assert pipe.tag_labels == tags
    assert set(pipe.labels) == {"PER", "ORG", "LOC", "MISC"}
    assert sum(len(d.ents) for d in docs) > 0
    for doc in docs:
        _check_invariants(doc, len(tags))
        for ent in doc.ents:
            row = doc._.ner_probs[ent.start : ent.end]
            if decoding == "greedy":  # each token's own argmax
                assert ent._.confidence == pytest.approx(float(row.max(-1).mean()), rel=1e-5)
            else:  # the probability of the tag the valid path gives each token
                ids = [tags.index(t) for t in _entity_tags(len(ent), ent.label_, "U-PER" in tags)]
                assert ent._.confidence == pytest.approx(float(row[np.arange(len(ent)), ids].mean()), rel=1e-5)


def test_confidence_and_entropy_match_probs(nlp: Language) -> None:
    doc = nlp(TEXTS[0])
    for token in doc:
        p = token._.ner_probs
        assert token._.ner_confidence == pytest.approx(float(p.max()))
        assert token._.ner_entropy == pytest.approx(float(-(p * np.log(p)).sum()), rel=1e-4)
        np.testing.assert_allclose(p, np.exp(token._.ner_logits) / np.exp(token._.ner_logits).sum(), rtol=1e-4)


def test_batching_does_not_change_results(nlp: Language) -> None:
    texts = [t * k for k in (1, 3, 7) for t in TEXTS]
    one_by_one = [nlp(t)._.ner_probs for t in texts]
    small = spacy.blank("en")  # a budget of 128 positions forces several length-sorted batches
    pipe = small.add_pipe("distilner", config={"model": nlp.get_pipe("distilner").model_name, "max_batch_tokens": 128})
    batched = [d._.ner_probs for d in small.pipe(texts, batch_size=64)]
    for a, b in zip(one_by_one, batched):
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert pipe.padding.batches > 1 and 0.0 <= pipe.padding.waste < 1.0


def test_pipe_options(nlp: Language) -> None:
    gen = (t for t in TEXTS)
    assert len(list(nlp.pipe(gen))) == len(TEXTS)
    tuples = list(nlp.pipe([(t, {"i": i}) for i, t in enumerate(TEXTS)], as_tuples=True))
    assert [ctx["i"] for _, ctx in tuples] == list(range(len(TEXTS)))


def test_multiprocessing_matches_single(nlp: Language) -> None:
    single = [[(e.start_char, e.end_char, e.label_) for e in d.ents] for d in nlp.pipe(TEXTS)]
    multi = [[(e.start_char, e.end_char, e.label_) for e in d.ents] for d in nlp.pipe(TEXTS, n_process=2, batch_size=1)]
    assert single == multi


def test_error_handler_is_used(nlp: Language, monkeypatch: pytest.MonkeyPatch) -> None:
    pipe = nlp.get_pipe("distilner")
    seen = []

    def fail(docs):
        raise RuntimeError("boom")

    monkeypatch.setattr(pipe, "predict", fail)
    nlp.set_error_handler(lambda name, proc, docs, e: seen.append((name, [d.text for d in docs], str(e))))
    assert list(nlp.pipe(["a b", "c d"])) == []
    # the batch failed, so each Doc was retried alone and reported alone
    assert seen == [("distilner", ["a b"], "boom"), ("distilner", ["c d"], "boom")]


def test_works_after_other_tokenization(iob_dir: Path) -> None:
    """Any spaCy tokenization: here words from Doc(words=..., spaces=...) and a sentencizer."""
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("distilner", config={"model": str(iob_dir)})
    doc = Doc(nlp.vocab, words=["New", "York", "-", "based", "Apple", "."], spaces=[True, False, False, True, False, False])
    doc = nlp(doc)
    _check_invariants(doc, len(IOB2))


def test_threshold_and_store_probs(iob_dir: Path) -> None:
    base = spacy.blank("en")
    base.add_pipe("distilner", config={"model": str(iob_dir)})
    strict = spacy.blank("en")
    strict.add_pipe("distilner", config={"model": str(iob_dir), "threshold": 0.6, "store_probs": False})
    full, filtered = base(TEXTS[0]), strict(TEXTS[0])
    expected = [(e.start, e.end, e.label_) for e in full.ents if e._.confidence >= 0.6]
    assert [(e.start, e.end, e.label_) for e in filtered.ents] == expected
    assert len(expected) < len(full.ents)
    assert filtered._.ner_probs is None and filtered[0]._.ner_confidence is None
    with pytest.raises(ValueError, match="D013"):
        spacy.blank("en").add_pipe("distilner", config={"model": str(iob_dir), "threshold": 1.5})


def test_ents_modes(iob_dir: Path) -> None:
    text = TEXTS[0]
    predicted = spacy.blank("en")
    predicted.add_pipe("distilner", config={"model": str(iob_dir)})
    pred_ents = predicted(text).ents
    for mode in ("keep", "spans"):
        nlp = spacy.blank("en")
        nlp.add_pipe("distilner", config={"model": str(iob_dir), "ents_mode": mode, "spans_key": "sk"})
        doc = nlp.make_doc(text)
        doc.ents = [Span(doc, 0, 2, label="GOLD")]
        doc = nlp(doc)
        if mode == "keep":
            assert doc.ents[0].label_ == "GOLD" and doc.ents[0].end == 2
            kept = {(e.start, e.end, e.label_) for e in doc.ents[1:]}
            assert kept == {(e.start, e.end, e.label_) for e in pred_ents if e.start >= 2}
        else:
            assert [e.label_ for e in doc.ents] == ["GOLD"]
            assert [(s.start, s.end, s.label_) for s in doc.spans["sk"]] == [(e.start, e.end, e.label_) for e in pred_ents]


def test_long_document_windows(iob_dir: Path) -> None:
    """Text far beyond the 64-piece window: windows cover it, no token is left without scores."""
    nlp = spacy.blank("en")
    pipe = nlp.add_pipe("distilner", config={"model": str(iob_dir), "stride": 16})
    doc = nlp(" ".join(TEXTS) * 200)
    _check_invariants(doc, len(IOB2))
    assert pipe.padding.windows > 100
    assert all(t._.ner_logits.any() for t in doc if not t.is_space)


def test_document_context_is_one_sequence(nlp: Language) -> None:
    pipe = nlp.get_pipe("distilner")
    nlp("Mary said. John went. Paris is new.")
    assert pipe.padding.windows == 1


def test_pooling_options(iob_dir: Path) -> None:
    for pooling in ("average", "max"):
        nlp = spacy.blank("en")
        nlp.add_pipe("distilner", config={"model": str(iob_dir), "pooling": pooling})
        _check_invariants(nlp("Smithsonian Appleby went to Yorkshire."), len(IOB2))


def test_serialization_round_trip(nlp: Language, tmp_path: Path) -> None:
    doc = nlp(TEXTS[0])
    nlp.to_disk(tmp_path / "pipe")
    saved = tmp_path / "pipe" / "distilner" / "model"
    assert (saved / "model.safetensors").is_file() and not list(saved.rglob("*.bin"))
    loaded = spacy.load(tmp_path / "pipe")
    np.testing.assert_array_equal(loaded(TEXTS[0])._.ner_probs, doc._.ner_probs)
    from_bytes = spacy.blank("en")
    from_bytes.add_pipe("distilner", config={"model": "does-not-matter"})
    from_bytes.get_pipe("distilner").from_bytes(nlp.get_pipe("distilner").to_bytes())
    np.testing.assert_array_equal(from_bytes(TEXTS[0])._.ner_probs, doc._.ner_probs)


def test_load_changes_predictions(iob_dir: Path, tmp_path: Path) -> None:
    """Loading really replaces the weights (a silently skipped load would keep the old ones)."""
    from tiny import make_tiny_model

    other = spacy.blank("en")
    other.add_pipe("distilner", config={"model": str(make_tiny_model(tmp_path / "other", IOB2, seed=7))})
    nlp = spacy.blank("en")
    nlp.add_pipe("distilner", config={"model": str(iob_dir)})
    nlp.to_disk(tmp_path / "a")
    before = other(TEXTS[0])._.ner_probs
    other.get_pipe("distilner").from_disk(tmp_path / "a" / "distilner")
    after = other(TEXTS[0])._.ner_probs
    assert not np.allclose(before, after)
    np.testing.assert_array_equal(after, nlp(TEXTS[0])._.ner_probs)


def test_docbin_keeps_entities_and_scores(nlp: Language) -> None:
    docs = list(nlp.pipe(TEXTS))
    db = DocBin(store_user_data=True, docs=docs)
    restored = list(DocBin().from_bytes(db.to_bytes()).get_docs(nlp.vocab))
    for a, b in zip(docs, restored):
        assert [(e.start, e.end, e.label_) for e in a.ents] == [(e.start, e.end, e.label_) for e in b.ents]
        np.testing.assert_array_equal(a._.ner_probs, b._.ner_probs)
        assert [e._.confidence for e in a.ents] == [e._.confidence for e in b.ents]


def test_scorer_reports_per_type(nlp: Language) -> None:
    doc = nlp(TEXTS[0])
    gold = nlp.make_doc(TEXTS[0])
    gold.ents = [Span(gold, 0, 2, label="PER"), Span(gold, 4, 6, label="LOC")]
    scores = nlp.evaluate([Example(nlp.make_doc(TEXTS[0]), gold)])
    assert {"ents_p", "ents_r", "ents_f", "ents_per_type"} <= set(scores)
    assert 0.0 <= scores["ents_f"] <= 1.0
    assert len(doc.ents) > 0


def test_escape_hatch_and_device(nlp: Language) -> None:
    pipe = nlp.get_pipe("distilner")
    assert type(pipe.hf_model).__name__ == "DistilBertForTokenClassification"
    assert pipe.hf_tokenizer.is_fast
    assert resolve_device("auto") in ("cpu", "cuda:0", "mps")
    with pytest.raises(ValueError, match="D009"):
        resolve_device("tpu")


def test_auto_precision_follows_the_decision(nlp: Language, decision: str) -> None:
    """``precision="auto"`` runs bf16 weights where the CPU has native bf16, fp32 elsewhere."""
    pipe = nlp.get_pipe("distilner")
    _check_invariants(nlp(TEXTS[0]), len(IOB2))
    assert pipe.backend_info["precision"] == decision
    assert next(pipe.hf_model.parameters()).dtype == {"fp32": torch.float32, "bf16": torch.bfloat16}[decision]


def test_bf16_precision_runs(iob_dir: Path) -> None:
    from spacy_distilner.cpu import cpu_info

    nlp = spacy.blank("en")
    pipe = nlp.add_pipe("distilner", config={"model": str(iob_dir), "precision": "bf16", "device": "cpu"})
    if cpu_info().native_bf16:
        _check_invariants(nlp(TEXTS[0]), len(IOB2))
        assert pipe.backend_info["precision"] == "bf16"
    else:
        with pytest.warns(UserWarning, match="W001"):
            _check_invariants(nlp(TEXTS[0]), len(IOB2))
        assert pipe.backend_info["precision"] == "fp32"


BAD_TEXTS = {
    "empty": "",
    "whitespace": "  \n\t  ",
    "punctuation": "?!...;;--",
    "emoji_zwj": "👩‍👩‍👧‍👦 🏳️‍🌈 family 👍🏽",
    "rtl_mixed": "שלום John Smith مرحبا London",
    "combining": "Zoë Cafe\u0301 n\u0303 Ame\u0301lie",
    "nul_controls": "John\x00 Smith\x01\x02 went\x7f to Paris\x1b.",
    "crlf": "John Smith\r\nwent to\r\n\r\nLondon.\r\n",
    "unknown_script": "東京 and ᚠᚢᚦ in ꦲꦏ",
    "nbsp_thin_space_in_names": "Mr.\u00a0John\u00a0Smith of Deutsche\u2009Bank\tin New\r\nYork",
    "nfd_accents": "Mu\u0308ller visited Zu\u0308rich and Ge\u0301rard",
    "literal_special_tokens": "[PAD] " * 300 + "[CLS] John [SEP] Smith [MASK] [UNK]",
}


@pytest.mark.parametrize("name", list(BAD_TEXTS))
def test_bad_input_table(nlp: Language, name: str) -> None:
    doc = nlp(BAD_TEXTS[name])
    assert doc.text == BAD_TEXTS[name]
    _check_invariants(doc, len(IOB2))


def test_million_character_doc(nlp: Language) -> None:
    text = ("John went to Paris. " * 50_000)[:1_000_000]
    doc = nlp(text)
    _check_invariants(doc, len(IOB2))
    assert len(doc.text) == 1_000_000


def test_hundred_thousand_tokens(nlp: Language) -> None:
    doc = nlp(" ".join(["London"] * 100_000))
    assert len(doc) == 100_000
    assert doc._.ner_probs.shape == (100_000, len(IOB2))
    np.testing.assert_allclose(doc._.ner_probs.sum(-1), 1.0, rtol=1e-5)


def _break(kind: str, src: Path, dst: Path) -> Path:
    if kind == "missing":
        return dst / "nope"
    shutil.copytree(src, dst)
    if kind == "pickle_only":
        (dst / "model.safetensors").rename(dst / "pytorch_model.bin")
    elif kind == "no_head":
        from transformers import DistilBertModel

        shutil.rmtree(dst)
        DistilBertModel.from_pretrained(str(src)).save_pretrained(str(dst), safe_serialization=True)
        shutil.copy(src / "tokenizer.json", dst)
        shutil.copy(src / "vocab.txt", dst)
    elif kind == "mismatched_labels":
        config = json.loads((dst / "config.json").read_text())
        config["id2label"] = {"0": "O", "1": "B-PER", "2": "I-PER"}
        config["label2id"] = {"O": 0, "B-PER": 1, "I-PER": 2}
        (dst / "config.json").write_text(json.dumps(config))
    return dst


@pytest.mark.parametrize(
    "kind,code",
    [("missing", "D001"), ("pickle_only", "D002"), ("no_head", "D003"), ("mismatched_labels", "D004")],
)
def test_bad_model_dirs(iob_dir: Path, tmp_path: Path, kind: str, code: str) -> None:
    path = _break(kind, iob_dir, tmp_path / "broken")
    nlp = spacy.blank("en")
    pipe = nlp.add_pipe("distilner", config={"model": str(path)})
    with pytest.raises(ValueError, match=code):
        pipe.hf_model


def test_hub_id_without_hub_fails_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from spacy_distilner.loading import resolve_model_path

    with pytest.raises(ValueError, match="D011.*no-such-org/no-such-model"):
        resolve_model_path("hf:no-such-org/no-such-model")


@pytest.mark.parametrize("name", ["models/mine", "no-such-org/no-such-model", "./x/y", "mine"])
def test_a_missing_local_path_is_never_a_hub_id(name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import huggingface_hub

    from spacy_distilner.loading import resolve_model_path

    def no_hub(*args: object, **kwargs: object) -> None:
        raise AssertionError("looked up on the hub")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", no_hub)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="D001"):
        resolve_model_path(name)


@pytest.fixture(scope="module")
def unicode_nlp(tmp_path_factory: pytest.TempPathFactory) -> Language:
    from tiny import make_tiny_model

    nlp = spacy.blank("en")
    nlp.add_pipe("distilner", config={"model": str(make_tiny_model(tmp_path_factory.mktemp("uni"), IOB2, seed=2))})
    return nlp


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=300))
def test_random_unicode_keeps_alignment_invariants(unicode_nlp: Language, text: str) -> None:
    """Any text: its characters are all kept, every token is scored, entities sit on token boundaries."""
    doc = unicode_nlp(text)
    assert doc.text == text
    _check_invariants(doc, len(IOB2))
    for token in doc:
        if not token._.ner_logits.any():
            assert token._.ner_probs[0] == 1.0  # unaligned tokens are O (index 0 in IOB2)
    for ent in doc.ents:
        assert ent._.confidence is not None and not ent.text.isspace()


def test_exclude_model_skips_the_weights(nlp: Language, tmp_path: Path) -> None:
    pipe = nlp.get_pipe("distilner")
    pipe.to_disk(tmp_path / "none", exclude=["model"])
    assert not (tmp_path / "none").exists()
    pipe.to_disk(tmp_path / "all")
    assert (tmp_path / "all" / "model" / "model.safetensors").is_file()
    fresh = spacy.blank("en").add_pipe("distilner", config={"model": "no/such/dir"})
    fresh.from_disk(tmp_path / "all", exclude=["model"])
    assert fresh._backend is None  # nothing loaded
    assert fresh.from_bytes(pipe.to_bytes()).tag_labels == pipe.tag_labels
