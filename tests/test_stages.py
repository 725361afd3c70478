"""Unit tests of the pure stages: windows, batching, alignment, pooling, decoding."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from spacy_distilner.align import align, pool, softmax
from spacy_distilner.batching import bucket, plan_batches
from spacy_distilner.decode import TagSet, decode, entropy, log_softmax, tag_path, viterbi
from spacy_distilner.windows import make_windows
from tiny import BILOU, IOB2


@given(n=st.integers(0, 3000), size=st.integers(1, 300), data=st.data())
def test_windows_own_every_piece_once(n: int, size: int, data) -> None:
    stride = data.draw(st.integers(0, size - 1))
    windows = make_windows(0, n, size, stride)
    owned = np.zeros(n, dtype=int)
    for w in windows:
        assert 0 <= w.start <= w.keep_start <= w.keep_end <= w.end <= n
        assert w.length <= size
        owned[w.keep_start : w.keep_end] += 1
    assert (owned == 1).all()
    if n > size:  # the fewest windows that keep the overlap, all of one length
        assert len(windows) == -(-(n - stride) // (size - stride))
        assert len({w.length for w in windows}) == 1
        assert all(a.end - b.start >= stride for a, b in zip(windows, windows[1:]))


def test_windows_centre_wins() -> None:
    first, second = make_windows(0, 20, 10, 4)[:2]
    assert (first.start, first.end, second.start, second.end) == (0, 10, 5, 15)
    assert first.keep_end == second.keep_start == 7  # middle of the 5-piece overlap [5, 10)


def test_windows_are_balanced() -> None:
    """A text just over the window length is split into two short windows, not two full ones."""
    windows = make_windows(0, 300, 254, 64)
    assert [(w.start, w.end) for w in windows] == [(0, 182), (118, 300)]


@pytest.mark.parametrize("size,stride", [(10, 10), (10, -1), (0, 0)])
def test_windows_reject_bad_settings(size: int, stride: int) -> None:
    with pytest.raises(ValueError, match="D007"):
        make_windows(0, 100, size, stride)


@given(st.lists(st.integers(1, 512), max_size=200), st.integers(512, 8192))
def test_batches_respect_budget_and_cover_all(lengths: list[int], budget: int) -> None:
    batches = plan_batches(lengths, budget, 512)
    assert sorted(i for _, rows in batches for i in rows) == list(range(len(lengths)))
    for width, rows in batches:
        assert max(lengths[i] for i in rows) <= width == bucket(width) <= 512
        assert len(rows) * width <= budget
    for width in {width for width, _ in batches}:  # as few batches a width as the budget allows
        rows = sum(len(r) for w, r in batches if w == width)
        assert sum(w == width for w, _ in batches) == -(-rows // (budget // width))


def test_buckets_are_few_and_pad_little() -> None:
    widths = {bucket(n) for n in range(1, 513)}
    assert len(widths) == 40 and max(widths) == 512
    assert all(n <= bucket(n) < n + max(4, n / 8) for n in range(1, 513))
    assert plan_batches([30, 100, 29, 3], 8192, 64) == [(64, [1]), (32, [0, 2]), (4, [3])]  # capped at the model's rows


def test_align_by_offsets() -> None:
    # text "New York's  x" — tokens: New(0,3) York(4,8) 's(8,10) " "(11,12) x(12,13)
    starts = np.array([0, 4, 8, 11, 12])
    ends = np.array([3, 8, 10, 12, 13])
    # pieces: New | York | ' | s | x | a piece spanning "rk's" across two tokens
    offsets = np.array([[0, 3], [4, 8], [8, 9], [9, 10], [12, 13], [6, 10]])
    al = align(starts, ends, offsets)
    per_token = [list(al.pieces[al.indptr[t] : al.indptr[t + 1]]) for t in range(5)]
    assert per_token == [[0], [1, 5], [2, 3, 5], [], [4]]
    assert list(al.aligned) == [True, True, True, False, True]


def test_align_ignores_zero_width_and_outside_pieces() -> None:
    al = align(np.array([0]), np.array([3]), np.array([[0, 0], [5, 6], [1, 2]]))
    assert list(al.pieces) == [2]


def test_pooling_strategies() -> None:
    al = align(np.array([0, 4, 8]), np.array([3, 7, 9]), np.array([[0, 2], [2, 3], [8, 9]]))
    piece_logits = np.array([[3.0, 0.0], [0.0, 3.0], [1.0, 1.0]], dtype=np.float32)
    logits, probs = pool(al, piece_logits, o_index=0, pooling="first")
    np.testing.assert_allclose(logits[0], [3.0, 0.0])
    np.testing.assert_allclose(probs[1], [1.0, 0.0])  # unaligned token: one-hot O
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-6)
    _, avg = pool(al, piece_logits, 0, "average")
    np.testing.assert_allclose(avg[0], [0.5, 0.5], rtol=1e-6)
    _, mx = pool(al, piece_logits, 0, "max")
    np.testing.assert_allclose(mx[0], [0.5, 0.5], rtol=1e-6)
    np.testing.assert_allclose(mx[2], softmax(piece_logits[2]), rtol=1e-6)
    _, hot = pool(al, piece_logits, 0, "first", temperature=0.5)
    assert hot[0, 0] > probs[0, 0]


IOB = TagSet.from_id2label(dict(enumerate(IOB2)))
BIL = TagSet.from_id2label(dict(enumerate(BILOU)))


def _ids(tagset: TagSet, tags: str) -> list[int]:
    return [tagset.tags.index(t) for t in tags.split()]


@pytest.mark.parametrize(
    "tags,expected",
    [
        ("O O", []),
        ("B-PER I-PER O", [(0, 2, "PER")]),
        ("I-PER I-PER", [(0, 2, "PER")]),  # I- after nothing starts an entity
        ("O I-LOC", [(1, 2, "LOC")]),  # I- after O starts an entity
        ("B-PER I-ORG", [(0, 1, "PER"), (1, 2, "ORG")]),  # I-X after B-Y starts X
        ("B-PER B-PER", [(0, 1, "PER"), (1, 2, "PER")]),
        ("B-PER I-PER B-PER I-PER", [(0, 2, "PER"), (2, 4, "PER")]),
    ],
)
def test_decode_iob2_repairs(tags: str, expected: list) -> None:
    assert decode(_ids(IOB, tags), IOB) == expected


@pytest.mark.parametrize(
    "tags,expected",
    [
        ("B-PER L-PER O U-LOC", [(0, 2, "PER"), (3, 4, "LOC")]),
        ("B-PER I-PER I-PER L-PER", [(0, 4, "PER")]),
        ("B-PER O", [(0, 1, "PER")]),  # unfinished B- is closed by O
        ("L-ORG U-ORG", [(0, 1, "ORG"), (1, 2, "ORG")]),  # lone L- is an entity
        ("B-PER I-LOC L-LOC", [(0, 1, "PER"), (1, 3, "LOC")]),
        ("U-PER I-PER", [(0, 1, "PER"), (1, 2, "PER")]),
    ],
)
def test_decode_bilou_repairs(tags: str, expected: list) -> None:
    assert decode(_ids(BIL, tags), BIL) == expected


def _encode(spans: list, n: int, tagset: TagSet) -> list[int]:
    """Tag ids of ``n`` tokens holding ``spans``, written the scheme's canonical way."""
    bilou = "U" in tagset.prefixes
    tags = ["O"] * n
    for start, end, label in spans:
        for i in range(start, end):
            prefix = "B" if i == start else "I"
            if bilou and i == end - 1:
                prefix = "U" if i == start else "L"
            tags[i] = f"{prefix}-{label}"
    return [tagset.tags.index(t) for t in tags]


SMALL_IOB = TagSet.from_id2label(dict(enumerate(("O", "B-A", "I-A", "B-B", "I-B"))))
SMALL_BIL = TagSet.from_id2label(dict(enumerate(("O", "B-A", "I-A", "L-A", "U-A", "B-B", "I-B", "L-B", "U-B"))))


@given(st.data())
def test_viterbi_is_the_best_valid_path(data) -> None:
    """Against brute force: no repair is needed on the Viterbi path, and no valid path scores higher."""
    tagset = data.draw(st.sampled_from([SMALL_IOB, SMALL_BIL]))
    n, n_tags = data.draw(st.integers(1, 4)), len(tagset.tags)
    values = st.floats(-6, 6, allow_nan=False)
    logits = np.array(data.draw(st.lists(st.lists(values, min_size=n_tags, max_size=n_tags), min_size=n, max_size=n)))
    scores = log_softmax(logits)
    path = list(viterbi(scores, tagset.transitions))
    assert _encode(decode(path, tagset), n, tagset) == path  # valid: decoding changes nothing
    grid = np.stack(np.meshgrid(*[np.arange(n_tags)] * n, indexing="ij"), -1).reshape(-1, n)
    valid = [p for p in grid.tolist() if _encode(decode(p, tagset), n, tagset) == p]
    best = max(scores[np.arange(n), p].sum() for p in valid)
    assert scores[np.arange(n), path].sum() == pytest.approx(best, abs=1e-9)


def test_tag_path_repairs_by_probability() -> None:
    """Greedy B-PER O I-PER reads as two entities; Viterbi asks which reading is more probable."""
    ids = {t: i for i, t in enumerate(IOB.tags)}
    logits = np.full((3, len(IOB.tags)), -4.0)
    logits[0, ids["B-PER"]] = 3.0
    logits[1, ids["O"]], logits[1, ids["I-PER"]] = 1.0, 0.8  # O barely wins on its own
    logits[2, ids["I-PER"]], logits[2, ids["B-PER"]] = 3.0, 2.0
    greedy = tag_path(logits, IOB, "greedy")
    assert decode(greedy, IOB) == [(0, 1, "PER"), (2, 3, "PER")]
    assert decode(tag_path(logits, IOB), IOB) == [(0, 3, "PER")]
    logits[1, ids["O"]] = 6.0  # now O is much more likely: the second token starts B-PER instead
    assert decode(tag_path(logits, IOB), IOB) == [(0, 1, "PER"), (2, 3, "PER")]
    assert list(tag_path(logits, IOB))[2] == ids["B-PER"]


def test_tag_path_keeps_a_valid_argmax_and_blank_tokens_are_o() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, len(BIL.tags))).astype(np.float32)
    logits[:, BIL.o_index] = 5.0  # all O: valid
    logits[2] = 0.0  # a token no piece covers
    np.testing.assert_array_equal(tag_path(logits, BIL), np.full(6, BIL.o_index))
    logits = np.zeros((2, len(BIL.tags)), dtype=np.float32)
    logits[0, BIL.tags.index("B-PER")] = 9.0  # B- then a blank token: B- cannot stay open in BILOU,
    logits[0, BIL.tags.index("U-PER")] = 4.0  # so the best valid reading is U-
    assert decode(tag_path(logits, BIL), BIL) == [(0, 1, "PER")]
    assert BIL.tags[tag_path(logits, BIL)[0]] == "U-PER"
    assert tag_path(np.zeros((0, len(BIL.tags)), dtype=np.float32), BIL).shape == (0,)


def test_tagset_labels_with_hyphens_and_errors() -> None:
    ts = TagSet.from_id2label({0: "O", 1: "B-creative-work", 2: "I-creative-work"})
    assert ts.entity_labels == ("creative-work",)
    with pytest.raises(ValueError, match="D005"):
        TagSet.from_id2label({0: "O", 1: "PER"})
    with pytest.raises(ValueError, match="D006"):
        TagSet.from_id2label({0: "B-PER", 1: "I-PER"})


def test_entropy_bounds() -> None:
    assert entropy(np.array([1.0, 0.0, 0.0])) == 0.0
    np.testing.assert_allclose(entropy(np.full(4, 0.25)), np.log(4), rtol=1e-6)
