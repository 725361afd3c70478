"""Training targets and loss: gold entities -> tag ids per word piece, and cross-entropy per batch of windows."""

from __future__ import annotations

from typing import Any, Callable, Iterable, Optional, Sequence

import numpy as np
from spacy.tokens import Doc
from spacy.training import Example, validate_get_examples
from spacy.training.iob_utils import doc_to_biluo_tags

from ..align import align, softmax, token_bounds
from ..batching import Batch
from ..decode import TagSet
from ..errors import Errors
from ..tokenize import DocPieces, tokenize_texts

IGNORE = -100


def tag_names(labels: Sequence[str], scheme: str) -> tuple[str, ...]:
    """The tag inventory for entity ``labels`` under ``scheme`` (``iob2`` or ``bilou``)."""
    prefixes = "BI" if scheme == "iob2" else "BILU"
    return ("O",) + tuple(f"{p}-{label}" for label in sorted(labels) for p in prefixes)


def training_tags(
    labels: Optional[Sequence[str]], get_examples: Callable[[], Iterable[Example]], scheme: str
) -> tuple[str, ...]:
    """The tags to train for ``labels``, or else for the entity labels of the examples' gold Docs
    (D016 when there are none)."""
    validate_get_examples(get_examples, "DistilNER.initialize")
    if labels is None:
        labels = sorted({ent.label_ for eg in get_examples() for ent in eg.reference.ents})
    if not labels:
        raise ValueError(Errors.D016)
    return tag_names(labels, scheme)


def token_tag_ids(biluo: Sequence[Optional[str]], tagset: TagSet) -> np.ndarray:
    """Tag ids for per-token BILUO tags; missing (``-`` / ``None``) tags become ``IGNORE``."""
    biluo = [t or "-" for t in biluo]
    scheme_is_iob = not any(p == "L" for p in tagset.prefixes)
    if scheme_is_iob:  # map the prefix only: spaCy's biluo_to_iob also rewrites "L-" inside "URL-LINK"
        biluo = [t if t in ("O", "-") else {"U": "B", "L": "I"}.get(t[0], t[0]) + t[1:] for t in biluo]
    index = {t: i for i, t in enumerate(tagset.tags)}
    return np.array([index.get(t, IGNORE) for t in biluo], dtype=np.int64)


def gold_biluo(gold: Doc) -> list[str]:
    """BILUO tags of ``gold``; tokens whose entity annotation is missing (``ent_iob == 0``) get ``-``."""
    tags = doc_to_biluo_tags(gold, missing="O")
    return [tag if token.ent_iob != 0 else "-" for tag, token in zip(tags, gold)]


def inside_tags(tagset: TagSet) -> np.ndarray:
    """For each tag id, the id of its continuation: ``B-X``/``I-X`` -> ``I-X``, ``O`` -> ``O`` (IOB2 only)."""
    if any(p in "LUES" for p in tagset.prefixes):
        raise ValueError(Errors.D020)
    return np.array(
        [tagset.tags.index(f"I-{lab}") if prefix in "BI" else i for i, (prefix, lab) in enumerate(zip(tagset.prefixes, tagset.labels))],
        dtype=np.int64,
    )


def piece_targets(gold: Doc, pieces: DocPieces, tagset: TagSet, label_pieces: str = "first") -> np.ndarray:
    """Gold tag id per word piece.

    A token's first piece carries its tag. Its other pieces are ignored (``label_pieces="first"``)
    or get the continuation tag ``I-X`` / ``O`` (``"all"``, IOB2), which teaches the model
    to continue an entity wherever another tokenizer starts a token inside a gold word.
    """
    targets = np.full(len(pieces), IGNORE, dtype=np.int64)
    if len(gold) == 0 or len(pieces) == 0:
        return targets
    starts, ends, space = token_bounds(gold)
    alignment = align(starts, ends, pieces.offsets, space)
    tok_tags = token_tag_ids(gold_biluo(gold), tagset)
    if label_pieces == "all":
        counts = np.diff(alignment.indptr)
        owner = np.repeat(np.arange(len(gold)), counts)
        later = np.arange(len(owner)) != np.repeat(alignment.indptr[:-1], counts)
        known = later & (tok_tags[owner] != IGNORE)
        targets[alignment.pieces[known]] = inside_tags(tagset)[tok_tags[owner[known]]]
    has = alignment.aligned
    first_piece = alignment.pieces[alignment.indptr[:-1][has]]
    # a piece that starts two tokens keeps the earlier token's tag
    targets[first_piece[::-1]] = tok_tags[has][::-1]
    return targets


def cross_entropy(
    logits: np.ndarray, targets: np.ndarray, label_smoothing: float = 0.0
) -> tuple[float, np.ndarray]:
    """Summed cross-entropy over rows whose target is not ``IGNORE``, and its gradient w.r.t. ``logits``."""
    n_tags = logits.shape[-1]
    flat = logits.reshape(-1, n_tags)
    tgt = targets.reshape(-1)
    valid = tgt != IGNORE
    grad = np.zeros_like(flat)
    if not valid.any():
        return 0.0, grad.reshape(logits.shape)
    probs = softmax(flat[valid])
    truth = np.full_like(probs, label_smoothing / n_tags)
    truth[np.arange(len(probs)), tgt[valid]] += 1.0 - label_smoothing
    loss = float(-(truth * np.log(np.clip(probs, 1e-12, 1.0))).sum())
    grad[valid] = probs - truth
    return loss, grad.reshape(logits.shape)


def gold_targets(
    examples: Sequence[Example],
    tokenizer: Any,
    tagset: TagSet,
    label_pieces: str,
    pieces: Optional[Sequence[DocPieces]] = None,
) -> list[np.ndarray]:
    """Gold tag id per word piece of each example's text, tokenized as at inference (:func:`piece_targets`;
    ``pieces``: the texts' pieces where the caller has them already)."""
    if pieces is None:
        pieces = tokenize_texts(tokenizer, [eg.predicted.text for eg in examples])
    return [piece_targets(eg.reference, p, tagset, label_pieces) for eg, p in zip(examples, pieces)]


def batch_loss(
    batch: Batch, logits: np.ndarray, targets: Sequence[np.ndarray], label_smoothing: float = 0.0
) -> tuple[float, np.ndarray]:
    """Cross-entropy of one batch's ``(rows, length, n_tags)`` logits against the ``targets`` of its rows'
    owned pieces, as its share of the mean over every labelled piece in ``targets``, and the gradient
    w.r.t. ``logits``; a non-finite loss is an error (D017)."""
    n_valid = max(sum(int((t != IGNORE).sum()) for t in targets), 1)
    loss, d_logits = cross_entropy(logits, batch.gather(targets, IGNORE), label_smoothing)
    if not np.isfinite(loss):
        raise ValueError(Errors.D017)
    return loss / n_valid, d_logits / n_valid
