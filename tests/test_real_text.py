"""Real text: whitespace tokens inside names, decomposed accents, literal special-token strings."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import numpy as np
import pytest
import spacy
from hypothesis import given, settings
from hypothesis import strategies as st
from spacy.language import Language

from spacy_distilner.decode import TagSet, decode, span_confidence, tag_path
from spacy_distilner.loading import load_tokenizer
from spacy_distilner.tokenize import normalize_unicode, tokenize_texts
from tiny import BILOU, IOB2, make_tiny_model

IOB = TagSet.from_id2label(dict(enumerate(IOB2)))
BIL = TagSet.from_id2label(dict(enumerate(BILOU)))
SPACES = ("\u00a0", "\n", "\t", "  ", "\u2009", "\r\n", "\u00a0\u00a0", "\n\n")
ACCENTED = ("Zoë", "Müller", "Zürich", "Ångström", "Señor", "François", "Æsir", "café", "Göteborg", "naïve")
PLAIN = ("John", "Smith", "Paris", "London", "Google", "the", "said", "of", "new", "York", "Mary", "apple")


def _one_hot(tags: list[str], tagset: TagSet) -> np.ndarray:
    """Logits whose argmax is ``tags`` (``""``: a whitespace token, zero logits as ``align.pool`` gives)."""
    logits = np.zeros((len(tags), len(tagset.tags)), dtype=np.float32)
    for i, tag in enumerate(tags):
        if tag:
            logits[i] = -5.0
            logits[i, tagset.tags.index(tag)] = 5.0
    return logits


@pytest.mark.parametrize("decoding", ["greedy", "viterbi"])
@pytest.mark.parametrize(
    "tagset,tags,expected",
    [
        (IOB, ["B-PER", "", "I-PER", "O"], [(0, 3, "PER")]),
        (IOB, ["B-PER", "", "", "I-PER", "", "I-PER"], [(0, 6, "PER")]),
        (IOB, ["B-PER", "", "B-PER"], [(0, 1, "PER"), (2, 3, "PER")]),
        (IOB, ["", "B-LOC", ""], [(1, 2, "LOC")]),
        (IOB, ["B-ORG", "", "O", "", "B-LOC", "", "I-LOC"], [(0, 1, "ORG"), (4, 7, "LOC")]),
        (BIL, ["B-PER", "", "L-PER"], [(0, 3, "PER")]),
        (BIL, ["U-LOC", "", "U-LOC", "", "O"], [(0, 1, "LOC"), (2, 3, "LOC")]),
        (BIL, ["B-ORG", "", "I-ORG", "", "L-ORG"], [(0, 5, "ORG")]),
    ],
)
def test_whitespace_tokens_are_transparent(tagset: TagSet, tags: list[str], expected: list, decoding: str) -> None:
    skip = np.array([t == "" for t in tags])
    logits = _one_hot(tags, tagset)
    path = tag_path(logits, tagset, decoding, skip)
    assert path.shape == (len(tags),)
    spans = decode(path, tagset)
    assert spans == expected
    for start, end, _ in spans:  # never starts or ends on whitespace; confidence from the words alone
        assert not skip[start] and not skip[end - 1]
        assert span_confidence(path_probs(logits), path, start, end, skip) > 0.99
    kept = np.flatnonzero(~skip)  # the same entities as the words alone give, mapped back
    words_only = decode(tag_path(logits[~skip], tagset, decoding), tagset)
    assert [(int(kept[s]), int(kept[e - 1]) + 1, lab) for s, e, lab in words_only] == spans


def path_probs(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(-1, keepdims=True))
    return z / z.sum(-1, keepdims=True)


def test_viterbi_bridges_whitespace_it_would_otherwise_repair() -> None:
    """``B-PER <ws> I-PER`` was an invalid path (I after O) before; now the I continues the entity."""
    tags = ["B-PER", "", "I-PER"]
    logits = _one_hot(tags, IOB)
    assert decode(tag_path(logits, IOB, "viterbi"), IOB) != [(0, 3, "PER")]
    assert decode(tag_path(logits, IOB, "viterbi", np.array([False, True, False])), IOB) == [(0, 3, "PER")]


@pytest.fixture(scope="module")
def cased_nlp(tmp_path_factory: pytest.TempPathFactory, decision: str) -> Language:
    """A tiny cased model, under each precision decision (accents are not stripped by its normalizer)."""
    path = make_tiny_model(tmp_path_factory.mktemp("cased"), IOB2, seed=3, max_position_embeddings=512, lowercase=False)
    nlp = spacy.blank("en")
    nlp.add_pipe("distilner", config={"model": str(path)})
    return nlp


def _ents(doc) -> list[tuple[str, str]]:
    """Entities as (NFC text with whitespace runs collapsed, label): comparable across variants."""
    return [(" ".join(unicodedata.normalize("NFC", e.text).split()), e.label_) for e in doc.ents]


words = st.lists(st.sampled_from(PLAIN + ACCENTED), min_size=1, max_size=40)


@settings(max_examples=60)
@given(words=words, data=st.data())
def test_inserted_whitespace_never_changes_entities(cased_nlp: Language, words: list[str], data) -> None:
    gaps = [data.draw(st.sampled_from((" ",) + tuple(f" {s}" for s in SPACES) + SPACES)) for _ in words[1:]]
    spaced = words[0] + "".join(gap + word for gap, word in zip(gaps, words[1:]))
    plain, doc = cased_nlp(" ".join(words)), cased_nlp(spaced)
    assert doc.text == spaced
    assert _ents(doc) == _ents(plain)
    assert doc._.ner_probs.shape == (len(doc), len(IOB2))
    for ent in doc.ents:
        assert not ent[0].is_space and not ent[-1].is_space


@settings(max_examples=60)
@given(words=words)
def test_nfd_never_changes_entities(cased_nlp: Language, words: list[str]) -> None:
    text = " ".join(words)
    nfd = unicodedata.normalize("NFD", text)
    doc = cased_nlp(nfd)
    assert doc.text == nfd  # offsets index the text as given
    assert _ents(doc) == _ents(cased_nlp(text))


def test_nfd_pieces_are_the_nfc_pieces_with_original_offsets(cased_nlp: Language) -> None:
    tok = cased_nlp.get_pipe("distilner").hf_tokenizer
    nfc, nfd = "Jürgen Müller", unicodedata.normalize("NFD", "Jürgen Müller")
    a, b = tokenize_texts(tok, [nfc, nfd])
    np.testing.assert_array_equal(a.ids, b.ids)
    assert tok.unk_token_id not in b.ids
    assert [nfd[s:e] for s, e in b.offsets][-1].endswith("r")
    assert max(b.offsets[:, 1]) == len(nfd)


def test_normalize_unicode_is_idempotent(iob_dir: Path) -> None:
    tok = load_tokenizer(iob_dir)
    state = tok.backend_tokenizer.normalizer.__getstate__()
    assert b'"NFC"' in state
    assert normalize_unicode(tok).backend_tokenizer.normalizer.__getstate__() == state


@pytest.mark.parametrize("special", ["[PAD]", "[SEP]", "[CLS]", "[MASK]", "[UNK]"])
def test_literal_special_tokens_are_text(cased_nlp: Language, special: str) -> None:
    tok = cased_nlp.get_pipe("distilner").hf_tokenizer
    (pieces,) = tokenize_texts(tok, [f"{special} John {special}{special} Smith"])
    assert not set(pieces.ids.tolist()) & set(tok.all_special_ids)
    doc = cased_nlp(f"{special} " * 300 + "John Smith visited Paris.")
    assert len(doc._.ner_probs) == len(doc)
