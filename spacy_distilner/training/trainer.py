"""The bodies of the component's training hooks: ``initialize``, ``update`` (loss through
``get_loss``) and ``finish_update``. Imported by the hooks only, so inference never loads it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Iterable, Optional, Sequence

import numpy as np
from spacy.language import Language
from spacy.training import Example, validate_examples, validate_get_examples
from thinc.api import Optimizer

from ..backends import training_autocast
from ..errors import Errors
from ..loading import init_head_rows, load_for_training, load_tokenizer, resolve_model_path
from ..tokenize import tokenize_texts
from .lora import apply_lora, trainable_report
from .loss import IGNORE, cross_entropy, piece_targets, tag_names

if TYPE_CHECKING:
    from ..component import DistilNER


def initialize(
    pipe: "DistilNER",
    get_examples: Callable[[], Iterable[Example]],
    nlp: Optional[Language] = None,
    labels: Optional[Sequence[str]] = None,
) -> None:
    """Tag set from ``labels`` or the examples' entities, and a fresh head on the encoder.

    With ``head_label_map`` set and a trained model as ``model``, the head rows of tags whose
    (mapped) label the model already has are copied from its head. With ``lora_r > 0`` the
    encoder is frozen and wrapped with LoRA adapters (the head stays trainable). The trainable
    parameter counts are printed and stored in ``nlp.meta["distilner_parameters"]``.
    """
    from wasabi import msg

    settings = pipe.settings
    validate_get_examples(get_examples, "DistilNER.initialize")
    if labels is None:
        labels = sorted({ent.label_ for eg in get_examples() for ent in eg.reference.ents})
    if not labels:
        raise ValueError(Errors.D016)
    path = resolve_model_path(settings.model)
    tags = tag_names(labels, settings.tag_scheme)
    hf_model = load_for_training(path, tags)
    if settings.head_label_map is not None:
        copied = init_head_rows(hf_model, path, settings.head_label_map)
        pairs = ", ".join(f"{new}<-{old}" for new, old in copied.items())
        msg.info(f"Head rows copied from {path}: {len(copied)} of {len(tags)} tags" + (pairs and f": {pairs}"))
    if settings.lora_r > 0:
        hf_model = apply_lora(
            hf_model, r=settings.lora_r, alpha=settings.lora_alpha, dropout=settings.lora_dropout, ffn=settings.lora_ffn
        )
    if settings.freeze_embeddings:  # e.g. a 250k-piece multilingual vocabulary: kept as pretrained
        hf_model.get_input_embeddings().weight.requires_grad_(False)
    report = trainable_report(hf_model)
    mode = f"LoRA r={settings.lora_r}" if settings.lora_r > 0 else "Full fine-tuning"
    msg.info(f"{mode}: {report['trainable']:,} of {report['total']:,} parameters trainable ({report['share']:.2%})")
    if nlp is not None:
        nlp.meta["distilner_parameters"] = report
    pipe.adopt(hf_model, load_tokenizer(path), training=True)
    pipe.engine.languages = [nlp.lang] if nlp is not None else None


def get_loss(logits: np.ndarray, labels: np.ndarray, label_smoothing: float) -> tuple[float, np.ndarray]:
    """Summed cross-entropy of ``(rows, length, n_tags)`` logits against piece tag ids
    (``IGNORE`` positions do not count) and its gradient; a non-finite loss is an error (D017)."""
    loss, d_logits = cross_entropy(logits, labels, label_smoothing)
    if not np.isfinite(loss):
        raise ValueError(Errors.D017)
    return loss, d_logits


def update(pipe: "DistilNER", examples: Iterable[Example], losses: dict[str, float]) -> dict[str, float]:
    """One gradient step's backward passes over whole documents, windowed and batched as at inference.

    The loss is the mean over the labelled pieces (``label_pieces``); with precision ``auto`` or
    ``bf16`` on hardware with native bf16 the forward pass runs under bf16 autocast (fp32 weights).
    """
    import torch

    settings = pipe.settings
    losses.setdefault(pipe.name, 0.0)
    validate_examples(examples, "DistilNER.update")
    if settings.backend != "torch":
        raise ValueError(Errors.D019.format(backend=settings.backend))
    engine = pipe.engine
    if engine.backend.precision == "bf16":  # type: ignore[attr-defined]
        raise ValueError(Errors.D024.format(precision=settings.precision))
    examples = [eg for eg in examples if len(eg.predicted)]
    if not examples:
        return losses
    pieces = tokenize_texts(engine.tokenizer, [eg.predicted.text for eg in examples])
    targets = [piece_targets(eg.reference, p, engine.tagset, settings.label_pieces) for eg, p in zip(examples, pieces)]
    n_valid = max(sum(int((t != IGNORE).sum()) for t in targets), 1)
    device = engine.device  # resolved once, when the engine was built
    autocast = training_autocast(settings.backend, settings.precision, device)
    model = pipe.model
    for batch in engine.batches(pieces, engine.windows(pieces)):
        with torch.autocast(device.split(":")[0], dtype=torch.bfloat16, enabled=autocast):
            logits, backprop = model.begin_update((batch.input_ids, batch.attention_mask))
        loss, d_logits = get_loss(logits, batch.gather(targets, IGNORE), settings.label_smoothing)
        backprop(d_logits / n_valid)
        losses[pipe.name] += loss / n_valid
    return losses


def finish_update(pipe: "DistilNER", sgd: Optimizer) -> None:
    """Apply the thinc optimizer to every torch parameter with a gradient (frozen ones have none);
    the head's step is ``head_lr_scale`` larger."""
    import torch

    shim_id = pipe.model.shims[0].id
    for name, param in pipe.engine.hf_model.named_parameters():
        if param.grad is None:
            continue
        scale = pipe.settings.head_lr_scale if "classifier" in name.split(".") else 1.0  # peft: ...classifier.*
        weights, _ = sgd(
            (shim_id, name),
            param.data.detach().cpu().numpy().copy(),
            param.grad.detach().cpu().numpy(),
            lr_scale=scale,
        )
        param.data.copy_(torch.from_numpy(weights))
        param.grad.zero_()

