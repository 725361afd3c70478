"""Stage 1 — tokenize: Doc texts -> word pieces with character offsets (no special tokens).

User text is made safe for the word-piece tokenizer without moving offsets:

* ``normalize_unicode`` puts Unicode NFC before the tokenizer's own normalizer (unless it already
  composes: NFC, NFKC, or sentencepiece's precompiled map), so ``"Mu\u0308ller"`` reads as
  ``"Müller"``, not ``[UNK]``; the fast tokenizer tracks the change, and offsets still index
  the original text.
* Literal ``[PAD]``, ``[SEP]``, ``[CLS]``, ``[MASK]`` in a text are split like any other
  characters (``split_special_tokens``): user text never produces special-token ids.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

if TYPE_CHECKING:  # transformers is imported where a tokenizer is loaded, not at import
    from transformers import PreTrainedTokenizerFast


@dataclass(frozen=True)
class DocPieces:
    """The word pieces of one text: ids and ``[start, end)`` character offsets."""

    ids: np.ndarray  # (n_pieces,) int64
    offsets: np.ndarray  # (n_pieces, 2) int64, character offsets into the text

    def __len__(self) -> int:
        return int(self.ids.shape[0])


def tokenize_texts(tokenizer: PreTrainedTokenizerFast, texts: Sequence[str]) -> list[DocPieces]:
    """Tokenize all ``texts`` in one call of the fast tokenizer, without truncation.

    Special tokens are not added here: they are added per window (see ``windows``),
    so a long text is never cut.
    """
    if not texts:
        return []
    enc = tokenizer(
        list(texts),
        add_special_tokens=False,
        return_offsets_mapping=True,
        return_attention_mask=False,
        return_token_type_ids=False,
        truncation=False,
        split_special_tokens=True,
        verbose=False,
    )
    out = []
    for ids, offsets in zip(enc["input_ids"], enc["offset_mapping"]):
        ids_arr = np.asarray(ids, dtype=np.int64)
        off_arr = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
        out.append(DocPieces(ids_arr, off_arr))
    return out


_COMPOSING = frozenset({"NFC", "NFKC", "Precompiled"})


def _types(spec: Any) -> set[str]:
    """Every ``"type"`` in a tokenizers JSON spec (normalizer sequences nest)."""
    if isinstance(spec, dict):
        return {spec.get("type", "")} | {t for value in spec.values() for t in _types(value)}
    if isinstance(spec, list):
        return {t for item in spec for t in _types(item)}
    return set()


def normalize_unicode(tokenizer: PreTrainedTokenizerFast) -> PreTrainedTokenizerFast:
    """Put NFC first in ``tokenizer``'s normalizer (in place, idempotent) and return it."""
    from tokenizers import normalizers

    backend = tokenizer.backend_tokenizer
    current = backend.normalizer
    if current is not None and _types(json.loads(current.__getstate__())) & _COMPOSING:
        return tokenizer
    backend.normalizer = normalizers.NFC() if current is None else normalizers.Sequence([normalizers.NFC(), current])
    return tokenizer


def special_tokens_layout(tokenizer: PreTrainedTokenizerFast) -> tuple[list[int], list[int]]:
    """The special-token ids the model expects before and after a window's pieces.

    Read from the tokenizer itself (``[CLS] … [SEP]`` for BERT, ``<s> … </s>`` for XLM-R), so any
    fast tokenizer works: a short text is encoded with special tokens and their mask (the public
    call API of every transformers version); the special ids before and after its pieces are the layout.
    """
    enc = tokenizer("a", add_special_tokens=True, return_special_tokens_mask=True)
    ids, special = list(enc["input_ids"]), list(enc["special_tokens_mask"])
    first, last = special.index(0), len(special) - special[::-1].index(0)
    return ids[:first], ids[last:]


def model_limit(hf_model: Any, tokenizer: PreTrainedTokenizerFast) -> int:
    """The longest input row (special tokens included) the model and its tokenizer accept."""
    return min(int(hf_model.config.max_position_embeddings), int(tokenizer.model_max_length))
