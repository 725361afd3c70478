"""The inference path of one model as one object: tokenize → windows → batches → backend → align/pool.

An :class:`Engine` holds the tokenizer, the backend, the tag set and the window layout; its
:meth:`Engine.token_scores` turns Docs into per-token scores. The component calls it from
``predict`` and leaves decoding and annotation to ``set_annotations``; training reuses its
windows and batches, so both see the model's input the same way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import numpy as np
from spacy.tokens import Doc

from .align import align, pool, token_bounds
from .allocator import release_free_memory
from .backends import Backend, load_backend, make_backend
from .batching import Batch, PaddingStats, build_batches
from .casing import caps_view
from .cpu import accelerators, cpu_info
from .decode import TagSet
from .errors import Errors
from .loading import check_model_dir, load_tokenizer, write_model_settings
from .model_dir import read_settings
from .settings import Settings, check_max_length
from .tokenize import DocPieces, model_limit, special_tokens_layout, tokenize_texts
from .windows import Window, check_window, make_windows


@dataclass
class TokenScores:
    """Per-token logits and probabilities of one Doc, in ``tag_labels`` order."""

    logits: np.ndarray  # (n_tokens, n_tags) float32
    probs: np.ndarray  # (n_tokens, n_tags) float32
    skip: np.ndarray  # (n_tokens,) bool: whitespace tokens, transparent to decoding


class Engine:
    """Tokenizer, backend, tag set and windows of one model; ``token_scores(docs)`` runs the data path."""

    def __init__(
        self, backend: Backend, tokenizer: Any, settings: Settings, *, stored: Optional[dict[str, Any]] = None
    ) -> None:
        """Run ``backend`` with ``tokenizer``; ``stored``: the model's ``distilner.json`` settings (its
        window where ``settings`` set none, its temperature, its languages)."""
        stored = stored or {}
        self.backend, self.tokenizer, self.settings = backend, tokenizer, settings
        self.tagset = TagSet.from_config(backend.config)
        # the window as configured (None: the model's limit, a quarter window) is what a saved model keeps
        self.window_settings = {
            key: getattr(settings, key) if getattr(settings, key) is not None else stored.get(key)
            for key in ("max_length", "stride")
        }
        limit = model_limit(backend, tokenizer)
        self.max_length = int(self.window_settings["max_length"] or limit)
        self.prefix, self.suffix = special_tokens_layout(tokenizer)
        chosen = self.window_settings["stride"]
        stored_stride = int(chosen) if chosen is not None and settings.stride is None else 0
        check_max_length(self.max_length, limit, len(self.prefix) + len(self.suffix), stored_stride)
        self.window = self.max_length - len(self.prefix) - len(self.suffix)
        self.stride = self.window // 4 if chosen is None else int(chosen)
        check_window(self.window, self.stride)
        if settings.max_batch_tokens < self.max_length:
            raise ValueError(Errors.D008.format(value=settings.max_batch_tokens, max_length=self.max_length))
        self.temperature = float(stored.get("temperature", 1.0))
        self.languages: Optional[list[str]] = stored.get("languages")  # what the model was trained on
        self.padding = PaddingStats()

    @classmethod
    def from_dir(cls, path: Path, settings: Settings, owner: Any = None) -> "Engine":
        """The model stored in ``path`` (validated first), run by the backend ``settings`` ask for; ``owner``:
        what keeps ``path`` on disk (a temporary directory), kept by a backend that goes on reading it."""
        check_model_dir(path)
        tokenizer = load_tokenizer(path)
        return cls(load_backend(path, settings, tokenizer, owner), tokenizer, settings, stored=read_settings(path))

    @classmethod
    def from_module(
        cls, hf_model: Any, tokenizer: Any, settings: Settings, *, training: bool = False,
        stored: Optional[dict[str, Any]] = None,
    ) -> "Engine":
        """A (possibly peft-wrapped) transformers model in memory and its tokenizer (``training``: fp32 weights)."""
        return cls(make_backend(hf_model, tokenizer, settings, training), tokenizer, settings, stored=stored)

    @property
    def device(self) -> str:
        return self.backend.device

    @property
    def precision(self) -> str:
        return self.backend.precision

    @property
    def hf_model(self) -> Any:
        """The transformers module (read from the model's files on first access where the backend runs a graph)."""
        return self.backend.module

    def model_settings(self) -> dict[str, Any]:
        """What a saved model keeps beside its weights (``model_dir.SETTINGS_KEYS``)."""
        return {"temperature": self.temperature, **self.window_settings, "languages": self.languages}

    def save(self, path: Path) -> None:
        """The model directory: the backend's config and weights (and graph), tokenizer files, ``distilner.json``."""
        path.mkdir(parents=True, exist_ok=True)
        self.backend.save(path)
        self.tokenizer.save_pretrained(str(path))
        write_model_settings(path, self.model_settings())

    def info(self) -> dict[str, Any]:
        """Backend, precision and device actually in use (``auto`` resolved; bf16 may fall back to fp32),
        and what the CPU offers (``cpu``: model, flags, native bf16, int8 kernel family; CUDA/MPS)."""
        used = self.backend.info()
        return {
            "backend": used["backend"],
            "precision": used["precision"],
            "configured_precision": self.settings.precision,
            "device": used["device"],
            "cpu": cpu_info().as_dict(),
            **accelerators(),
        }

    def windows(self, pieces: Sequence[DocPieces]) -> list[Window]:
        """The strided windows of every text, in text order."""
        windows: list[Window] = []
        for i, doc_pieces in enumerate(pieces):
            windows.extend(make_windows(i, len(doc_pieces), self.window, self.stride))
        return windows

    def batches(self, pieces: Sequence[DocPieces], windows: Sequence[Window]) -> Iterator[Batch]:
        """Length-bucketed padded batches of ``windows`` within the token budget (counted in ``padding``)."""
        pad_id = self.tokenizer.pad_token_id or 0
        budget = self.settings.max_batch_tokens
        for batch in build_batches(pieces, windows, self.prefix, self.suffix, pad_id, budget, self.max_length):
            self.padding.add(batch)
            yield batch

    def piece_logits(self, pieces: Sequence[DocPieces]) -> list[np.ndarray]:
        """Piece logits per text: windows → batches → backend → each piece from the window that owns it."""
        out = [np.zeros((len(p), len(self.tagset.tags)), dtype=np.float32) for p in pieces]
        for batch in self.batches(pieces, self.windows(pieces)):
            start = time.perf_counter()
            logits = self.backend.forward(batch.input_ids, batch.attention_mask)
            self.padding.forward_seconds += time.perf_counter() - start
            batch.scatter(logits, out)
        release_free_memory()  # the batches' activations: a long stream would keep its high-water mark
        return out

    def token_scores(self, docs: Sequence[Doc]) -> list[TokenScores]:
        """Per-token calibrated scores for each Doc (pieces aligned to tokens by character offsets)."""
        texts = [caps_view(doc.text, self.settings.caps_view) for doc in docs]
        pieces = tokenize_texts(self.tokenizer, texts)
        scores = []
        for doc, doc_pieces, logits in zip(docs, pieces, self.piece_logits(pieces)):
            starts, ends, space = token_bounds(doc)
            alignment = align(starts, ends, doc_pieces.offsets, space)
            tok_logits, tok_probs = pool(
                alignment, logits, self.tagset.o_index, self.settings.pooling, self.temperature
            )
            scores.append(TokenScores(tok_logits, tok_probs, space))
        return scores
