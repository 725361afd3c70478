"""The ``distilner`` factory and component: tokenize → batch → run → decode → annotate."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Literal, Optional, Sequence

import numpy as np
import srsly
from spacy.attrs import IDX, LENGTH
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import minibatch
from spacy.vocab import Vocab

from .align import Pooling, align, pool
from .annotate import EntsMode, write_entities
from .backends import Backend, resolve_device
from .batching import PaddingStats, build_batches
from .decode import TagSet, decode, span_confidence
from .errors import Errors
from .extensions import install_extensions
from .loading import load_classifier, load_tokenizer, resolve_model_path
from .tokenize import DocPieces, special_tokens_layout, tokenize_texts
from .windows import Window, check_window, make_windows

MODEL_DIR = "model"
SETTINGS = "distilner.json"  # stored beside the weights: calibration temperature


@dataclass
class TokenScores:
    """Per-token logits and probabilities of one Doc, in ``tag_labels`` order."""

    logits: np.ndarray  # (n_tokens, n_tags) float32
    probs: np.ndarray  # (n_tokens, n_tags) float32


@Language.factory(
    "distilner",
    assigns=["doc.ents", "token.ent_iob", "token.ent_type", "doc._.ner_logits", "doc._.ner_probs"],
    default_config={
        "model": "default",
        "backend": "torch",
        "precision": "fp32",
        "device": "auto",
        "max_length": None,
        "stride": None,
        "max_batch_tokens": 8192,
        "pooling": "first",
        "threshold": 0.0,
        "store_probs": True,
        "ents_mode": "overwrite",
        "spans_key": "distilner",
        "num_threads": None,
        "scorer": {"@scorers": "spacy.ner_scorer.v1"},
    },
    default_score_weights={"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0, "ents_per_type": None},
)
def make_distilner(
    nlp: Language,
    name: str,
    model: str,
    backend: Literal["torch"],
    precision: Literal["fp32", "bf16"],
    device: str,
    max_length: Optional[int],
    stride: Optional[int],
    max_batch_tokens: int,
    pooling: Pooling,
    threshold: float,
    store_probs: bool,
    ents_mode: EntsMode,
    spans_key: str,
    num_threads: Optional[int],
    scorer: Optional[Callable],
) -> "DistilNER":
    """Build the component; the model is loaded on first use (or by ``from_disk``)."""
    return DistilNER(
        nlp.vocab,
        name=name,
        model_name=model,
        backend=backend,
        precision=precision,
        device=device,
        max_length=max_length,
        stride=stride,
        max_batch_tokens=max_batch_tokens,
        pooling=pooling,
        threshold=threshold,
        store_probs=store_probs,
        ents_mode=ents_mode,
        spans_key=spans_key,
        num_threads=num_threads,
        scorer=scorer,
    )


def _check_choice(what: str, value: str, options: Sequence[str]) -> None:
    if value not in options:
        raise ValueError(Errors.D009.format(what=what, value=value, options=", ".join(options)))


class DistilNER(TrainablePipe):
    """Transformer token-classification NER over whole Docs, with per-token scores.

    ``hf_model`` / ``hf_tokenizer`` are the underlying transformers objects.
    """

    def __init__(
        self,
        vocab: Vocab,
        *,
        name: str = "distilner",
        model_name: str = "default",
        backend: str = "torch",
        precision: str = "fp32",
        device: str = "auto",
        max_length: Optional[int] = None,
        stride: Optional[int] = None,
        max_batch_tokens: int = 8192,
        pooling: Pooling = "first",
        threshold: float = 0.0,
        store_probs: bool = True,
        ents_mode: EntsMode = "overwrite",
        spans_key: str = "distilner",
        num_threads: Optional[int] = None,
        scorer: Optional[Callable] = None,
    ) -> None:
        _check_choice("backend", backend, ("torch",))
        _check_choice("precision", precision, ("fp32", "bf16"))
        _check_choice("pooling", pooling, ("first", "average", "max"))
        _check_choice("ents_mode", ents_mode, ("overwrite", "keep", "spans"))
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(Errors.D013.format(value=threshold))
        self.vocab = vocab
        self.name = name
        self.model = None  # thinc wrapper of the torch module, set when the weights are loaded
        self.model_name = model_name
        self.cfg: dict[str, Any] = {
            "backend": backend,
            "precision": precision,
            "device": device,
            "max_length": max_length,
            "stride": stride,
            "max_batch_tokens": max_batch_tokens,
            "pooling": pooling,
            "threshold": threshold,
            "store_probs": store_probs,
            "ents_mode": ents_mode,
            "spans_key": spans_key,
            "num_threads": num_threads,
            "temperature": 1.0,
        }
        self.scorer = scorer
        self.padding = PaddingStats()
        self._hf_model: Any = None
        self._tokenizer: Any = None
        self._backend: Optional[Backend] = None
        install_extensions()

    # ------------------------------------------------------------------ loading
    def _load(self, path: Path) -> None:
        """Load weights, tokenizer and settings from a model directory and set up the backend."""
        tokenizer = load_tokenizer(path)
        hf_model = load_classifier(path)
        settings = srsly.read_json(path / SETTINGS) if (path / SETTINGS).is_file() else {}
        self._set_model(hf_model, tokenizer)
        self.cfg["temperature"] = float(settings.get("temperature", 1.0))

    def _set_model(self, hf_model: Any, tokenizer: Any) -> None:
        """Adopt a transformers model and tokenizer; validate the tag set and window settings."""
        from thinc.api import PyTorchWrapper_v2

        import torch

        from .backends.torch import TorchBackend, cpu_supports_bf16

        self.tagset = TagSet.from_id2label({int(k): v for k, v in hf_model.config.id2label.items()})
        limit = min(int(hf_model.config.max_position_embeddings), int(tokenizer.model_max_length))
        self.max_length = int(self.cfg["max_length"] or limit)
        self.prefix, self.suffix = special_tokens_layout(tokenizer)
        self.window = self.max_length - len(self.prefix) - len(self.suffix)
        self.stride = self.window // 4 if self.cfg["stride"] is None else int(self.cfg["stride"])
        check_window(self.window, self.stride)
        if self.cfg["max_batch_tokens"] < self.max_length:
            raise ValueError(Errors.D008.format(value=self.cfg["max_batch_tokens"], max_length=self.max_length))
        if self.cfg["num_threads"]:
            torch.set_num_threads(int(self.cfg["num_threads"]))
        precision = self.cfg["precision"]
        device = resolve_device(self.cfg["device"])
        if precision == "bf16" and device == "cpu" and not cpu_supports_bf16():
            precision = "fp32"  # autocast without native bf16 kernels is slower and no more accurate
        self._hf_model, self._tokenizer = hf_model, tokenizer
        self._backend = TorchBackend(hf_model, device=device, precision=precision)
        self.model = PyTorchWrapper_v2(hf_model)

    def _ensure_model(self) -> None:
        if self._backend is None:
            self._load(resolve_model_path(self.model_name))

    @property
    def hf_model(self) -> Any:
        """The transformers ``...ForTokenClassification`` module."""
        self._ensure_model()
        return self._hf_model

    @property
    def hf_tokenizer(self) -> Any:
        """The transformers fast tokenizer."""
        self._ensure_model()
        return self._tokenizer

    @property
    def tag_labels(self) -> tuple[str, ...]:
        """Tag names in the order of ``ner_logits`` / ``ner_probs`` columns."""
        self._ensure_model()
        return self.tagset.tags

    @property
    def labels(self) -> tuple[str, ...]:
        """Entity labels the model predicts."""
        self._ensure_model()
        return self.tagset.entity_labels

    # ---------------------------------------------------------------- inference
    def __call__(self, doc: Doc) -> Doc:
        return next(iter(self.pipe([doc])))

    def pipe(self, stream: Iterable[Doc], *, batch_size: int = 128) -> Iterator[Doc]:
        """Annotate Docs in batches; errors go to the pipeline's error handler."""
        install_extensions()
        error_handler = self.get_error_handler()
        for docs in minibatch(stream, size=batch_size):
            try:
                self.set_annotations(docs, self.predict(docs))
                yield from docs
            except Exception as err:
                error_handler(self.name, self, docs, err)

    def predict(self, docs: Iterable[Doc]) -> list[TokenScores]:
        """Token scores for each Doc; the Docs are not modified."""
        self._ensure_model()
        docs = list(docs)
        pieces = tokenize_texts(self._tokenizer, [doc.text for doc in docs])
        piece_logits = self._run(pieces)
        scores = []
        for doc, doc_pieces, logits in zip(docs, pieces, piece_logits):
            bounds = doc.to_array([IDX, LENGTH]).astype(np.int64).reshape(-1, 2)
            alignment = align(bounds[:, 0], bounds[:, 0] + bounds[:, 1], doc_pieces.offsets)
            tok_logits, tok_probs = pool(
                alignment,
                logits,
                self.tagset.o_index,
                self.cfg["pooling"],
                self.cfg["temperature"],
            )
            scores.append(TokenScores(tok_logits, tok_probs))
        return scores

    def _run(self, pieces: Sequence[DocPieces]) -> list[np.ndarray]:
        """Piece logits per text: windows → length-sorted padded batches → backend → merged."""
        assert self._backend is not None
        n_tags = len(self.tagset.tags)
        windows: list[Window] = []
        for i, doc_pieces in enumerate(pieces):
            windows.extend(make_windows(i, len(doc_pieces), self.window, self.stride))
        out = [np.zeros((len(p), n_tags), dtype=np.float32) for p in pieces]
        pad_id = self._tokenizer.pad_token_id or 0
        offset = len(self.prefix)
        for batch in build_batches(
            pieces, windows, self.prefix, self.suffix, pad_id, self.cfg["max_batch_tokens"]
        ):
            logits = self._backend.forward(batch.input_ids, batch.attention_mask)
            self.padding.add(batch)
            for row, i in enumerate(batch.rows):
                w = windows[i]
                lo, hi = offset + w.keep_start - w.start, offset + w.keep_end - w.start
                out[w.doc][w.keep_start : w.keep_end] = logits[row, lo:hi]
        return out

    def set_annotations(self, docs: Iterable[Doc], scores: Sequence[TokenScores]) -> None:
        """Decode tags, filter by ``threshold`` and write entities (and arrays if ``store_probs``)."""
        threshold = self.cfg["threshold"]
        for doc, score in zip(docs, scores):
            tag_ids = score.probs.argmax(axis=-1) if len(doc) else np.zeros(0, dtype=np.int64)
            spans = []
            for start, end, label in decode(tag_ids, self.tagset):
                conf = span_confidence(score.probs, tag_ids, start, end)
                if conf >= threshold:
                    spans.append((start, end, label, conf))
            write_entities(doc, spans, self.cfg["ents_mode"], self.cfg["spans_key"])
            if self.cfg["store_probs"]:
                doc._.ner_logits = score.logits
                doc._.ner_probs = score.probs

    # ------------------------------------------------------------ serialization
    def _save(self, path: Path) -> None:
        self._ensure_model()
        path.mkdir(parents=True, exist_ok=True)
        self._hf_model.save_pretrained(str(path), safe_serialization=True)
        self._tokenizer.save_pretrained(str(path))
        srsly.write_json(path / SETTINGS, {"temperature": self.cfg["temperature"]})

    def to_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> None:
        """Save settings and the model (safetensors + tokenizer files) under ``path``."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        srsly.write_json(path / "cfg.json", self.cfg)
        self._save(path / MODEL_DIR)

    def from_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> "DistilNER":
        """Load what ``to_disk`` saved; no network, no pickle."""
        path = Path(path)
        self.cfg.update(srsly.read_json(path / "cfg.json"))
        self._load(path / MODEL_DIR)
        return self

    def to_bytes(self, *, exclude: Iterable[str] = ()) -> bytes:
        """All files of ``to_disk`` packed into one msgpack dict."""
        with tempfile.TemporaryDirectory() as tmp:
            self.to_disk(tmp)
            files = {str(p.relative_to(tmp)): p.read_bytes() for p in Path(tmp).rglob("*") if p.is_file()}
        return srsly.msgpack_dumps(files)

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = ()) -> "DistilNER":
        files = srsly.msgpack_loads(bytes_data)
        with tempfile.TemporaryDirectory() as tmp:
            for name, data in files.items():
                target = Path(tmp) / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            return self.from_disk(tmp)

    # ----------------------------------------------------------------- training
    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
        labels: Optional[Sequence[str]] = None,
    ) -> None:
        """Load the configured model (training support builds a fresh head here)."""
        self._ensure_model()
