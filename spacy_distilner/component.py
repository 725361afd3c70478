"""The ``distilner`` factory and component: tokenize → batch → run → decode → annotate."""


import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Literal, Mapping, Optional, Sequence

import numpy as np
import srsly
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc
from spacy.training import Example, validate_examples, validate_get_examples
from thinc.api import Optimizer
from spacy.util import minibatch
from spacy.vocab import Vocab

from .align import Pooling, align, pool, token_bounds
from .annotate import EntsMode, write_entities
from .backends import Backend, resolve_device, resolve_precision, training_autocast
from .batching import Batch, PaddingStats, build_batches
from .decode import Decoding, TagSet, decode, span_confidence, tag_path
from .errors import Errors
from .extensions import install_extensions
from .loading import (
    init_head_rows,
    load_classifier,
    load_for_training,
    load_tokenizer,
    resolve_model_path,
    write_model_settings,
)
from .model_dir import ADAPTER_DIR, MODEL_DIR, SETTINGS_KEYS, read_settings
from .training.lora import is_lora
from .training.loss import IGNORE, cross_entropy, piece_targets, tag_names
from .tokenize import DocPieces, special_tokens_layout, tokenize_texts
from .windows import Window, check_window, make_windows

PRECISIONS = {"torch": ("auto", "fp32", "bf16"), "onnx": ("auto", "fp32", "int8", "fp16")}


@dataclass
class TokenScores:
    """Per-token logits and probabilities of one Doc, in ``tag_labels`` order."""

    logits: np.ndarray  # (n_tokens, n_tags) float32
    probs: np.ndarray  # (n_tokens, n_tags) float32
    skip: np.ndarray  # (n_tokens,) bool: whitespace tokens, transparent to decoding


FACTORY = "distilner"  # the factory name; a pipeline may name the component otherwise


@Language.factory(
    FACTORY,
    assigns=["doc.ents", "token.ent_iob", "token.ent_type", "doc._.ner_logits", "doc._.ner_probs"],
    default_config={
        "model": "default",
        "backend": "torch",
        "precision": "auto",
        "device": "auto",
        "max_length": None,
        "stride": None,
        "max_batch_tokens": 8192,
        "pooling": "first",
        "decoding": "viterbi",
        "threshold": 0.0,
        "store_probs": True,
        "ents_mode": "overwrite",
        "spans_key": "distilner",
        "num_threads": None,
        "tag_scheme": "iob2",
        "label_smoothing": 0.0,
        "label_pieces": "first",
        "head_lr_scale": 1.0,
        "head_label_map": None,
        "lora_r": 0,
        "lora_alpha": 16,
        "lora_dropout": 0.1,
        "lora_ffn": False,
        "freeze_embeddings": False,
        "scorer": {"@scorers": "spacy.ner_scorer.v1"},
    },
    default_score_weights={"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0, "ents_per_type": None},
)
def make_distilner(
    nlp: Language,
    name: str,
    model: str,
    backend: Literal["torch", "onnx"],
    precision: Literal["auto", "fp32", "bf16", "int8", "fp16"],
    device: str,
    max_length: Optional[int],
    stride: Optional[int],
    max_batch_tokens: int,
    pooling: Pooling,
    decoding: Decoding,
    threshold: float,
    store_probs: bool,
    ents_mode: EntsMode,
    spans_key: str,
    num_threads: Optional[int],
    tag_scheme: Literal["iob2", "bilou"],
    label_smoothing: float,
    label_pieces: Literal["first", "all"],
    head_lr_scale: float,
    head_label_map: Optional[dict[str, str]],
    lora_r: int,
    lora_alpha: int,
    lora_dropout: float,
    lora_ffn: bool,
    freeze_embeddings: bool,
    scorer: Optional[Callable],
) -> "DistilNER":
    """Build the component; the model is loaded on first use (or by ``from_disk``)."""
    return DistilNER(
        nlp.vocab,
        name=name,
        lang=nlp.lang,
        model_name=model,
        backend=backend,
        precision=precision,
        device=device,
        max_length=max_length,
        stride=stride,
        max_batch_tokens=max_batch_tokens,
        pooling=pooling,
        decoding=decoding,
        threshold=threshold,
        store_probs=store_probs,
        ents_mode=ents_mode,
        spans_key=spans_key,
        num_threads=num_threads,
        tag_scheme=tag_scheme,
        label_smoothing=label_smoothing,
        label_pieces=label_pieces,
        head_lr_scale=head_lr_scale,
        head_label_map=head_label_map,
        lora_r=lora_r,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        lora_ffn=lora_ffn,
        freeze_embeddings=freeze_embeddings,
        scorer=scorer,
    )


def _torch_inputs(model: Any, inputs: tuple[np.ndarray, np.ndarray], is_train: bool) -> tuple[Any, Callable]:
    """thinc -> torch: ``(input_ids, attention_mask)`` numpy arrays as keyword tensors on the module's device."""
    import torch
    from thinc.api import ArgsKwargs

    device = next(model.shims[0]._model.parameters()).device
    ids, mask = (torch.from_numpy(a).to(device) for a in inputs)
    return ArgsKwargs(args=(), kwargs={"input_ids": ids, "attention_mask": mask}), lambda d: None


def _torch_outputs(model: Any, inputs_outputs: tuple[Any, Any], is_train: bool) -> tuple[np.ndarray, Callable]:
    """torch -> thinc: float32 numpy logits, and the backward pass from their gradient."""
    import torch
    from thinc.api import ArgsKwargs

    logits = inputs_outputs[1].logits

    def backprop(d_logits: np.ndarray) -> Any:
        grad = torch.from_numpy(np.ascontiguousarray(d_logits, dtype=np.float32)).to(logits.device, logits.dtype)
        return ArgsKwargs(args=(logits,), kwargs={"grad_tensors": (grad,)})

    return logits.detach().float().cpu().numpy(), backprop


def _check_int8_kernels(model_dir: Path) -> None:
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


def _check_choice(what: str, value: str, options: Sequence[str]) -> None:
    if value not in options:
        raise ValueError(Errors.D009.format(what=what, value=value, options=", ".join(options)))


class DistilNER(TrainablePipe):
    """Transformer token-classification NER over whole Docs, with per-token scores.

    ``hf_model`` / ``hf_tokenizer`` are the underlying transformers objects. With ``lora_r > 0``,
    ``initialize`` wraps the model with peft LoRA adapters; ``to_disk`` then saves it merged
    (plain transformers weights) plus the adapter alone under ``model/adapter``.
    """

    def __init__(
        self,
        vocab: Vocab,
        *,
        name: str = "distilner",
        lang: Optional[str] = None,
        model_name: str = "default",
        backend: str = "torch",
        precision: str = "auto",
        device: str = "auto",
        max_length: Optional[int] = None,
        stride: Optional[int] = None,
        max_batch_tokens: int = 8192,
        pooling: Pooling = "first",
        decoding: Decoding = "viterbi",
        threshold: float = 0.0,
        store_probs: bool = True,
        ents_mode: EntsMode = "overwrite",
        spans_key: str = "distilner",
        num_threads: Optional[int] = None,
        tag_scheme: str = "iob2",
        label_smoothing: float = 0.0,
        label_pieces: str = "first",
        head_lr_scale: float = 1.0,
        head_label_map: Optional[dict[str, str]] = None,
        lora_r: int = 0,
        lora_alpha: int = 16,
        lora_dropout: float = 0.1,
        lora_ffn: bool = False,
        freeze_embeddings: bool = False,
        scorer: Optional[Callable] = None,
    ) -> None:
        _check_choice("backend", backend, ("torch", "onnx"))
        _check_choice("precision", precision, ("auto", "fp32", "bf16", "int8", "fp16"))
        if precision not in PRECISIONS[backend]:
            options = ", ".join(PRECISIONS[backend])
            raise ValueError(Errors.D018.format(precision=precision, backend=backend, options=options))
        _check_choice("pooling", pooling, ("first", "average", "max"))
        _check_choice("decoding", decoding, ("viterbi", "greedy"))
        _check_choice("ents_mode", ents_mode, ("overwrite", "keep", "spans"))
        _check_choice("tag_scheme", tag_scheme, ("iob2", "bilou"))
        _check_choice("label_pieces", label_pieces, ("first", "all"))
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(Errors.D013.format(value=threshold))
        if lora_r < 0:
            raise ValueError(f"lora_r must be >= 0 (0 = full fine-tuning), got {lora_r}.")
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
            "decoding": decoding,
            "threshold": threshold,
            "store_probs": store_probs,
            "ents_mode": ents_mode,
            "spans_key": spans_key,
            "num_threads": num_threads,
            "tag_scheme": tag_scheme,
            "label_smoothing": label_smoothing,
            "label_pieces": label_pieces,
            "head_lr_scale": head_lr_scale,
            "head_label_map": head_label_map,
            "lora_r": lora_r,
            "lora_alpha": lora_alpha,
            "lora_dropout": lora_dropout,
            "lora_ffn": lora_ffn,
            "freeze_embeddings": freeze_embeddings,
            "temperature": 1.0,
            "languages": None,
        }
        self.lang = lang
        self.scorer = scorer
        self.padding = PaddingStats()
        self._hf_model: Any = None
        self._tokenizer: Any = None
        self._backend: Optional[Backend] = None
        self._resolved: Optional[str] = None  # the precision "auto" (or a bf16 fallback) resolved to
        self._source: Optional[Path] = None  # the directory the weights were loaded from
        install_extensions()

    # ------------------------------------------------------------------ loading
    def _load(self, path: Path) -> None:
        """Load weights, tokenizer and settings from a model directory and set up the backend."""
        precision = self._runtime()[1]
        # validated first (a broken directory is named before the tokenizer), loaded straight into bf16 if it runs so
        hf_model = load_classifier(path, "bf16" if precision == "bf16" else None)
        self._source = path
        tokenizer = load_tokenizer(path)
        settings = read_settings(path)
        for key in ("max_length", "stride"):  # the model's own window, unless the config sets one
            if self.cfg[key] is None:
                self.cfg[key] = settings.get(key)
        self._set_model(hf_model, tokenizer, path)
        self.cfg["temperature"] = float(settings.get("temperature", 1.0))
        self.cfg["languages"] = settings.get("languages")
        self._check_language()

    def _check_language(self) -> None:
        """Warn (once per component) when the pipeline's language is not one the model was trained on."""
        languages = self.cfg["languages"]
        if languages and self.lang and self.lang not in languages:
            warnings.warn(Errors.W002.format(model=self.model_name, languages=", ".join(languages), lang=self.lang))

    def _runtime(self, training: bool = False) -> tuple[str, str]:
        """The device and precision the torch backend runs (``auto`` resolved for this machine, once)."""
        device = resolve_device(self.cfg["device"]) if self.cfg["backend"] == "torch" else "cpu"
        if self._resolved is None or training:
            self._resolved = resolve_precision(self.cfg["backend"], self.cfg["precision"], device, training)
        return device, self._resolved

    def _set_model(self, hf_model: Any, tokenizer: Any, model_dir: Optional[Path] = None, training: bool = False) -> None:
        """Adopt a transformers (or peft-wrapped) model and tokenizer; validate the tag set and window settings.

        ``model_dir`` is where the weights came from: the onnx backend uses an ONNX file stored there.
        """
        from thinc.api import PyTorchWrapper_v2

        import torch

        from .backends.torch import TorchBackend

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
        self._hf_model, self._tokenizer = hf_model, tokenizer
        device: Optional[str] = None
        if self.cfg["backend"] == "onnx":
            self._backend = self._onnx_backend(hf_model, model_dir)
        else:
            device, precision = self._runtime(training)
            self._backend = TorchBackend(hf_model, device=device, precision=precision)
        # thinc's shim would otherwise move the model to thinc's default device (the CPU unless
        # `--gpu-id` is given): training runs where the backend runs
        self.model = PyTorchWrapper_v2(
            hf_model,
            convert_inputs=_torch_inputs,
            convert_outputs=_torch_outputs,
            device=torch.device(device) if device else None,
        )

    def _onnx_backend(self, hf_model: Any, model_dir: Optional[Path]) -> Backend:
        """The ONNX file for ``precision`` stored in ``model_dir``, else one exported (once) into the cache."""
        from .backends.onnx import ONNX_FILES, OnnxBackend, providers_for_device

        precision = self._runtime()[1]
        path = model_dir / ONNX_FILES[precision] if model_dir is not None else None
        if precision == "int8" and model_dir is not None and path is not None and path.is_file():
            _check_int8_kernels(model_dir)
        if path is None or not path.is_file():
            from .export.onnx import cached_export

            path = cached_export(hf_model, precision)
        return OnnxBackend(path, self.cfg["num_threads"], providers_for_device(self.cfg["device"]))

    def _ensure_model(self) -> None:
        if self._backend is None:
            self._load(resolve_model_path(self.model_name))

    @property
    def hf_model(self) -> Any:
        """The transformers ``...ForTokenClassification`` module (while LoRA is active: with the
        adapter layers injected, sharing the trained weights)."""
        self._ensure_model()
        return self._hf_model.get_base_model() if is_lora(self._hf_model) else self._hf_model

    @property
    def hf_tokenizer(self) -> Any:
        """The transformers fast tokenizer."""
        self._ensure_model()
        return self._tokenizer

    @property
    def backend_info(self) -> dict[str, Any]:
        """Backend, precision and device actually in use (``auto`` resolved; bf16 may fall back to fp32),
        and what the CPU offers (``cpu``: model, flags, native bf16, int8 kernel family; CUDA/MPS)."""
        from .cpu import accelerators, cpu_info

        self._ensure_model()
        return {
            "backend": self.cfg["backend"],
            "precision": self._resolved,
            "configured_precision": self.cfg["precision"],
            "device": str(getattr(self._backend, "device", self.cfg["device"])),
            "cpu": cpu_info().as_dict(),
            **accelerators(),
        }

    @property
    def tag_labels(self) -> tuple[str, ...]:
        """Tag names in the order of ``ner_logits`` / ``ner_probs`` columns (empty until the model is loaded)."""
        return self.tagset.tags if self._backend is not None else ()

    @property
    def labels(self) -> tuple[str, ...]:
        """Entity labels the model predicts (empty until the model is loaded)."""
        return self.tagset.entity_labels if self._backend is not None else ()

    # ---------------------------------------------------------------- inference
    def __call__(self, doc: Doc) -> Doc:
        return next(iter(self.pipe([doc])))

    def pipe(self, stream: Iterable[Doc], *, batch_size: int = 128) -> Iterator[Doc]:
        """Annotate Docs in batches. When a batch fails, its Docs are retried one at a time, so only
        the Docs that fail on their own go to the pipeline's error handler; the others are annotated."""
        install_extensions()
        error_handler = self.get_error_handler()
        for docs in minibatch(stream, size=batch_size):
            try:
                self.set_annotations(docs, self.predict(docs))
            except Exception as err:
                if len(docs) == 1:
                    error_handler(self.name, self, docs, err)
                    continue
                yield from self.pipe(docs, batch_size=1)
                continue
            yield from docs

    def predict(self, docs: Iterable[Doc]) -> list[TokenScores]:
        """Token scores for each Doc; the Docs are not modified."""
        self._ensure_model()
        docs = list(docs)
        pieces = tokenize_texts(self._tokenizer, [doc.text for doc in docs])
        piece_logits = self._run(pieces)
        scores = []
        for doc, doc_pieces, logits in zip(docs, pieces, piece_logits):
            starts, ends, space = token_bounds(doc)
            alignment = align(starts, ends, doc_pieces.offsets, space)
            tok_logits, tok_probs = pool(
                alignment,
                logits,
                self.tagset.o_index,
                self.cfg["pooling"],
                self.cfg["temperature"],
            )
            scores.append(TokenScores(tok_logits, tok_probs, space))
        return scores

    def _windows(self, pieces: Sequence[DocPieces]) -> list[Window]:
        windows: list[Window] = []
        for i, doc_pieces in enumerate(pieces):
            windows.extend(make_windows(i, len(doc_pieces), self.window, self.stride))
        return windows

    def _batches(self, pieces: Sequence[DocPieces], windows: Sequence[Window]) -> Iterator[Batch]:
        pad_id = self._tokenizer.pad_token_id or 0
        for batch in build_batches(pieces, windows, self.prefix, self.suffix, pad_id, self.cfg["max_batch_tokens"]):
            self.padding.add(batch)
            yield batch

    def _run(self, pieces: Sequence[DocPieces]) -> list[np.ndarray]:
        """Piece logits per text: windows → length-sorted padded batches → backend → merged."""
        assert self._backend is not None
        n_tags = len(self.tagset.tags)
        windows = self._windows(pieces)
        out = [np.zeros((len(p), n_tags), dtype=np.float32) for p in pieces]
        offset = len(self.prefix)
        for batch in self._batches(pieces, windows):
            start = time.perf_counter()
            logits = self._backend.forward(batch.input_ids, batch.attention_mask)
            self.padding.forward_seconds += time.perf_counter() - start
            for row, i in enumerate(batch.rows):
                w = windows[i]
                out[w.doc][w.owned] = logits[row, w.owned_in_row(offset)]
        return out

    def set_annotations(self, docs: Iterable[Doc], scores: Sequence[TokenScores]) -> None:
        """Decode tags, filter by ``threshold`` and write entities (and arrays if ``store_probs``)."""
        threshold = self.cfg["threshold"]
        for doc, score in zip(docs, scores):
            tag_ids = tag_path(score.logits, self.tagset, self.cfg["decoding"], score.skip)
            spans = []
            for start, end, label in decode(tag_ids, self.tagset):
                conf = span_confidence(score.probs, tag_ids, start, end, score.skip)
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
        hf_model = self._hf_model
        if is_lora(hf_model):
            from .training.lora import merge, save_adapter

            save_adapter(hf_model, path / ADAPTER_DIR)
            hf_model = merge(hf_model)
        if self._resolved == "bf16" and self._source is not None:  # save the weights as stored, not their bf16 cast
            hf_model = load_classifier(self._source)
        hf_model.save_pretrained(str(path), safe_serialization=True)
        self._tokenizer.save_pretrained(str(path))
        write_model_settings(path, {k: self.cfg[k] for k in SETTINGS_KEYS})
        if self.cfg["backend"] == "onnx":  # the graph in use, so that loading does not export again
            from .backends.onnx import ONNX_FILES, OnnxBackend

            assert isinstance(self._backend, OnnxBackend)
            src, target = self._backend.path, path / ONNX_FILES[self._runtime()[1]]
            if not src.is_file():  # loaded from a directory that is gone (from_bytes): same weights, re-export
                from .export.onnx import cached_export

                src = cached_export(hf_model, self._runtime()[1])
            if not (target.is_file() and target.samefile(src)):
                shutil.copyfile(src, target)

    def to_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> None:
        """Save the model (safetensors, tokenizer files, ``distilner.json``) under ``path/model``.

        A LoRA-trained model is saved merged, and its adapter alone under ``path/model/adapter``
        (see ``training.lora.load_with_adapter``).

        Runtime settings (backend, precision, device, threshold, …) live in the pipeline's
        config, so ``spacy.load(path, config=...)`` can change them. ``exclude=["model"]`` saves nothing.
        """
        if MODEL_DIR not in exclude:
            self._save(Path(path) / MODEL_DIR)

    def from_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> "DistilNER":
        """Load what ``to_disk`` saved; no network, no pickle. ``exclude=["model"]`` loads nothing."""
        if MODEL_DIR not in exclude:
            self._load(Path(path) / MODEL_DIR)
        return self

    def to_bytes(self, *, exclude: Iterable[str] = ()) -> bytes:
        """All files of ``to_disk`` packed into one msgpack dict."""
        with tempfile.TemporaryDirectory() as tmp:
            self.to_disk(tmp, exclude=exclude)
            files = {str(p.relative_to(tmp)): p.read_bytes() for p in Path(tmp).rglob("*") if p.is_file()}
        return srsly.msgpack_dumps(files)

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = ()) -> "DistilNER":
        files = srsly.msgpack_loads(bytes_data)
        with tempfile.TemporaryDirectory() as tmp:
            for name, data in files.items():
                target = Path(tmp) / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            return self.from_disk(tmp, exclude=exclude)

    # ----------------------------------------------------------------- training
    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
        labels: Optional[Sequence[str]] = None,
    ) -> None:
        """Build the tag set from ``labels`` or the examples' entities, and a fresh head on the encoder.

        With ``head_label_map`` set and a trained model as ``model``, the head rows of tags whose
        (mapped) label the model already has are copied from its head. With ``lora_r > 0`` the
        encoder is frozen and wrapped with LoRA adapters (the head stays trainable). The trainable
        parameter counts are printed and stored in ``nlp.meta["distilner_parameters"]``.
        """
        from wasabi import msg

        from .training.lora import apply_lora, trainable_report

        validate_get_examples(get_examples, "DistilNER.initialize")
        if labels is None:
            labels = sorted({ent.label_ for eg in get_examples() for ent in eg.reference.ents})
        if not labels:
            raise ValueError(Errors.D016)
        path = resolve_model_path(self.model_name)
        tags = tag_names(labels, self.cfg["tag_scheme"])
        hf_model = load_for_training(path, tags)
        if self.cfg["head_label_map"] is not None:
            copied = init_head_rows(hf_model, path, self.cfg["head_label_map"])
            pairs = ", ".join(f"{new}<-{old}" for new, old in copied.items())
            msg.info(f"Head rows copied from {path}: {len(copied)} of {len(tags)} tags" + (pairs and f": {pairs}"))
        if self.cfg["lora_r"] > 0:
            hf_model = apply_lora(
                hf_model,
                r=self.cfg["lora_r"],
                alpha=self.cfg["lora_alpha"],
                dropout=self.cfg["lora_dropout"],
                ffn=self.cfg["lora_ffn"],
            )
        if self.cfg["freeze_embeddings"]:  # e.g. a 250k-piece multilingual vocabulary: kept as pretrained
            hf_model.get_input_embeddings().weight.requires_grad_(False)
        report = trainable_report(hf_model)
        mode = f"LoRA r={self.cfg['lora_r']}" if self.cfg["lora_r"] > 0 else "Full fine-tuning"
        msg.info(
            f"{mode}: {report['trainable']:,} of {report['total']:,} parameters trainable ({report['share']:.2%})"
        )
        if nlp is not None:
            nlp.meta["distilner_parameters"] = report
        self._set_model(hf_model, load_tokenizer(path), training=True)
        self.cfg["temperature"] = 1.0
        self.cfg["languages"] = [nlp.lang] if nlp is not None else None

    def update(
        self,
        examples: Iterable[Example],
        *,
        drop: float = 0.0,
        sgd: Optional[Optimizer] = None,
        losses: Optional[dict[str, float]] = None,
    ) -> dict[str, float]:
        """One gradient step on whole documents, windowed and batched exactly as at inference.

        The loss is the mean cross-entropy over each token's first piece (other pieces
        are ignored); dropout is the transformer's own (``drop`` is not used). With precision
        ``auto`` (or ``bf16``) on hardware with native bf16 the forward pass runs under bf16
        autocast; the weights and the optimizer stay fp32.
        """
        import torch

        losses = {} if losses is None else losses
        losses.setdefault(self.name, 0.0)
        validate_examples(examples, "DistilNER.update")
        if self.cfg["backend"] != "torch":
            raise ValueError(Errors.D019.format(backend=self.cfg["backend"]))
        if self._resolved == "bf16":
            raise ValueError(Errors.D024.format(precision=self.cfg["precision"]))
        examples = [eg for eg in examples if len(eg.predicted)]
        if not examples:
            return losses
        self._ensure_model()
        assert self.model is not None
        pieces = tokenize_texts(self._tokenizer, [eg.predicted.text for eg in examples])
        targets = [
            piece_targets(eg.reference, p, self.tagset, self.cfg["label_pieces"]) for eg, p in zip(examples, pieces)
        ]
        n_valid = max(sum(int((t != IGNORE).sum()) for t in targets), 1)
        windows = self._windows(pieces)
        offset = len(self.prefix)
        device = resolve_device(self.cfg["device"])
        autocast = training_autocast(self.cfg["backend"], self.cfg["precision"], device)
        for batch in self._batches(pieces, windows):
            labels = np.full(batch.input_ids.shape, IGNORE, dtype=np.int64)
            for row, i in enumerate(batch.rows):
                w = windows[i]
                labels[row, w.owned_in_row(offset)] = targets[w.doc][w.owned]
            with torch.autocast(device.split(":")[0], dtype=torch.bfloat16, enabled=autocast):
                logits, backprop = self.model.begin_update((batch.input_ids, batch.attention_mask))
            loss, d_logits = cross_entropy(logits, labels, self.cfg["label_smoothing"])
            if not np.isfinite(loss):
                raise ValueError(Errors.D017)
            backprop(d_logits / n_valid)
            losses[self.name] += loss / n_valid
        if sgd is not None:
            self.finish_update(sgd)
        return losses

    def finish_update(self, sgd: Optimizer) -> None:
        """Apply the thinc optimizer to every torch parameter with a gradient (frozen ones have none);
        the head's step is ``head_lr_scale`` larger."""
        import torch

        assert self.model is not None
        shim_id = self.model.shims[0].id
        for name, param in self._hf_model.named_parameters():
            if param.grad is None:
                continue
            scale = self.cfg["head_lr_scale"] if "classifier" in name.split(".") else 1.0  # peft: ...classifier.*
            weights, _ = sgd(
                (shim_id, name),
                param.data.detach().cpu().numpy().copy(),
                param.grad.detach().cpu().numpy(),
                lr_scale=scale,
            )
            param.data.copy_(torch.from_numpy(weights))
            param.grad.zero_()


def component_name(config: Mapping[str, Any]) -> str:
    """The name of the first distilner component in a pipeline's config (ValueError when there is none)."""
    components = config.get("components", {})
    name = next((n for n, block in components.items() if block.get("factory") == FACTORY), None)
    if name is None:
        raise ValueError("The pipeline has no distilner component.")
    return name


def find_component(nlp: Language) -> DistilNER:
    """The first distilner component of ``nlp`` (ValueError when there is none)."""
    pipe = next((p for _, p in nlp.pipeline if isinstance(p, DistilNER)), None)
    if pipe is None:
        raise ValueError("The pipeline has no distilner component.")
    return pipe
