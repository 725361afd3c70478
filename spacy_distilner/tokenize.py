"""Stage 1 — tokenize: Doc texts -> word pieces with character offsets (no special tokens)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
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
        verbose=False,
    )
    out = []
    for ids, offsets in zip(enc["input_ids"], enc["offset_mapping"]):
        ids_arr = np.asarray(ids, dtype=np.int64)
        off_arr = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
        out.append(DocPieces(ids_arr, off_arr))
    return out


def special_tokens_layout(tokenizer: PreTrainedTokenizerFast) -> tuple[list[int], list[int]]:
    """The special-token ids the model expects before and after a window's pieces.

    Read from the tokenizer itself (``[CLS] … [SEP]`` for BERT, ``<s> … </s>`` for XLM-R),
    so any fast tokenizer works.
    """
    marker = -1
    built = tokenizer.build_inputs_with_special_tokens([marker])
    i = built.index(marker)
    return list(built[:i]), list(built[i + 1 :])
