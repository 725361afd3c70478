"""The inference path of one model as one object: tokenize → windows → batches → backend → align/pool.

An :class:`Engine` holds the tokenizer, the backend, the tag set and the window layout; its
:meth:`Engine.token_scores` turns Docs into per-token scores. The component calls it from
``predict`` and leaves decoding and annotation to ``set_annotations``; training reuses its
windows and batches, so both see the model's input the same way.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import numpy as np
from spacy.tokens import Doc

from .align import align, pool, token_bounds
from .allocator import release_free_memory
from .backends import Backend, resolve_device, resolve_precision
from .batching import Batch, PaddingStats, build_batches
from .decode import TagSet
from .errors import Errors
from .casing import caps_view
from .settings import Settings, check_max_length
from .tokenize import DocPieces, model_limit, special_tokens_layout, tokenize_texts
from .windows import Window, check_window, make_windows


@dataclass
class TokenScores:
    """Per-token logits and probabilities of one Doc, in ``tag_labels`` order."""

    logits: np.ndarray  # (n_tokens, n_tags) float32
    probs: np.ndarray  # (n_tokens, n_tags) float32
    skip: np.ndarray  # (n_tokens,) bool: whitespace tokens, transparent to decoding


def check_int8_kernels(model_dir: Path) -> None:
    """Warn (W003) when the int8 graph's recipe (``validation.json``) was made for the other int8 kernel family."""
    from .cpu import cpu_info
    from .model_dir import read_json_object

    report = model_dir / "validation.json"
    if not report.is_file():
        return
    recipe = read_json_object(report).get("int8_recipe") or {}
    made, here = recipe.get("kernels", "avx2"), cpu_info().int8_family  # recipes before "kernels" were AVX2's
    if made != here:
        warnings.warn(Errors.W003.format(path=model_dir, made=made, here=here))


def runtime(settings: Settings, training: bool = False) -> tuple[str, str]:
    """The device and precision a backend runs for ``settings`` on this machine (``auto`` resolved)."""
    device = resolve_device(settings.device) if settings.backend == "torch" else "cpu"
    return device, resolve_precision(settings.backend, settings.precision, device, training)


def make_backend(
    hf_model: Any, tokenizer: Any, settings: Settings, device: str, precision: str, model_dir: Optional[Path] = None
) -> Backend:
    """The backend ``settings`` ask for: torch on ``device``, the TensorFlow graph of the same weights,
    or the ONNX file for ``precision`` stored in ``model_dir`` (else one exported, once, into the cache)."""
    if settings.num_threads:  # torch's thread count is process-wide; onnxruntime and TF get their own below
        import torch

        torch.set_num_threads(int(settings.num_threads))
    if settings.backend == "torch":
        from .backends.torch import TorchBackend

        return TorchBackend(hf_model, device=device, precision=precision)
    if settings.backend == "tensorflow":
        from .backends.tensorflow import TensorFlowBackend

        return TensorFlowBackend(hf_model, settings.num_threads)
    from .backends.onnx import ONNX_FILES, OnnxBackend, providers_for_device

    path = model_dir / ONNX_FILES[precision] if model_dir is not None else None
    if precision == "int8" and path is not None and path.is_file():
        check_int8_kernels(model_dir)  # type: ignore[arg-type]
    if path is None or not path.is_file():
        from .export.onnx import cached_export

        path = cached_export(hf_model, tokenizer, precision)
    return OnnxBackend(path, settings.num_threads, providers_for_device(settings.device))


class Engine:
    """Tokenizer, backend, tag set and windows of one model; ``token_scores(docs)`` runs the data path."""

    def __init__(
        self,
        hf_model: Any,
        tokenizer: Any,
        settings: Settings,
        *,
        model_dir: Optional[Path] = None,
        stored: Optional[dict[str, Any]] = None,
        training: bool = False,
        resolved: Optional[tuple[str, str]] = None,
    ) -> None:
        """Adopt a (possibly peft-wrapped) transformers model and its tokenizer and build the backend.

        ``model_dir``: where the weights came from (an ONNX graph stored there is used);
        ``stored``: the model's ``distilner.json`` settings (its window where ``settings`` set none,
        its temperature); ``training``: resolve precision for training (fp32 weights);
        ``resolved``: the ``(device, precision)`` of :func:`runtime`, when the caller has it.
        """
        stored = stored or {}
        self.device, self.precision = resolved or runtime(settings, training)
        self.hf_model, self.tokenizer, self.settings = hf_model, tokenizer, settings
        self.tagset = TagSet.from_config(hf_model.config)
        # the window as configured (None: the model's limit, a quarter window) is what a saved model keeps
        self.window_settings = {
            key: getattr(settings, key) if getattr(settings, key) is not None else stored.get(key)
            for key in ("max_length", "stride")
        }
        limit = model_limit(hf_model, tokenizer)
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
        self.backend = make_backend(hf_model, tokenizer, settings, self.device, self.precision, model_dir)
        self.temperature = float(stored.get("temperature", 1.0))
        self.languages: Optional[list[str]] = stored.get("languages")  # what the model was trained on
        self.padding = PaddingStats()

    @classmethod
    def from_dir(cls, path: Path, settings: Settings) -> "Engine":
        """The model stored in ``path`` (validated; loaded straight into bf16 where it runs so)."""
        from .loading import load_classifier, load_tokenizer
        from .model_dir import read_settings

        resolved = runtime(settings)
        hf_model = load_classifier(path, "bf16" if resolved[1] == "bf16" else None)
        tokenizer = load_tokenizer(path)
        return cls(hf_model, tokenizer, settings, model_dir=path, stored=read_settings(path), resolved=resolved)

    def model_settings(self) -> dict[str, Any]:
        """What a saved model keeps beside its weights (``model_dir.SETTINGS_KEYS``)."""
        return {"temperature": self.temperature, **self.window_settings, "languages": self.languages}

    def info(self) -> dict[str, Any]:
        """Backend, precision and device actually in use (``auto`` resolved; bf16 may fall back to fp32),
        and what the CPU offers (``cpu``: model, flags, native bf16, int8 kernel family; CUDA/MPS)."""
        from .cpu import accelerators, cpu_info

        return {
            "backend": self.settings.backend,
            "precision": self.precision,
            "configured_precision": self.settings.precision,
            "device": str(getattr(self.backend, "device", self.settings.device)),
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
