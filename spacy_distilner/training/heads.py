"""The model a training run starts from: an encoder (or a trained classifier) with a head for the
run's tags, head rows copied from a trained model's, LoRA adapters or frozen embeddings as configured;
and a trained LoRA classifier rebuilt from its base and saved adapter."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import srsly
from safetensors import safe_open

from ..errors import Errors
from ..loading import dtype_argument, head_shape, weight_files
from ..model_dir import read_json_object
from ..settings import Settings, import_transformers
from .lora import TAGS_FILE, apply_lora, load_adapter, trainable_report


def _head_tensors(files: list[Path]) -> tuple[Any, Any]:
    """The stored head's ``classifier.weight`` and ``classifier.bias`` (torch tensors, any shard)."""
    found = {}
    for file in files:
        with safe_open(str(file), framework="pt") as f:
            for key in f.keys():
                for part in ("weight", "bias"):
                    if key == f"classifier.{part}" or key.endswith(f".classifier.{part}"):
                        found[part] = f.get_tensor(key)
    return found["weight"], found["bias"]


def _config(path: Path) -> dict:
    """``path/config.json`` as a JSON object (D001 when missing, D022 when it is not one)."""
    if not (path / "config.json").is_file():
        raise ValueError(Errors.D001.format(path=path / "config.json"))
    return read_json_object(path / "config.json")


def _base_tags(config: dict, files: list[Path]) -> tuple[str, ...] | None:
    """The tags of the classification head stored in ``files`` (``None`` for a bare encoder)."""
    if head_shape(files) is None:
        return None
    id2label = config.get("id2label", {})
    return tuple(id2label[str(i)] for i in range(len(id2label)))


def load_for_training(path: Path, tags: tuple[str, ...]) -> Any:
    """An encoder (or a token classifier) from ``path`` with a head for ``tags``, fp32 weights.

    The head is kept when its tags are exactly ``tags`` (resuming), else freshly initialised
    (also when it has as many rows as ``tags`` but other tags).
    """
    import torch

    config = _config(path)
    files = weight_files(path)  # refuses pickle-only directories
    try:
        model = import_transformers().AutoModelForTokenClassification.from_pretrained(
            str(path),
            **dtype_argument(torch.float32),  # fp32 master weights, whatever the stored dtype (fp16 when shipped)
            local_files_only=True,
            use_safetensors=True,
            trust_remote_code=False,
            num_labels=len(tags),
            id2label=dict(enumerate(tags)),
            label2id={t: i for i, t in enumerate(tags)},
            ignore_mismatched_sizes=True,
        )
    except Exception as err:  # wrong architecture, corrupt file, …: say which directory
        raise ValueError(Errors.D015.format(path=path, err=err)) from err
    base_tags = _base_tags(config, files)
    if base_tags is not None and base_tags != tuple(tags):
        with torch.no_grad():  # a same-sized head for other tags was loaded as is
            model.classifier.weight.normal_(0.0, float(getattr(model.config, "initializer_range", 0.02)))
            model.classifier.bias.zero_()
    return model


def _map_tag(tag: str, label_map: Mapping[str, str]) -> str:
    """``B-person`` -> ``B-PER`` under ``{"person": "PER"}``; unmapped labels and ``O`` stay as they are."""
    prefix, sep, label = tag.partition("-")
    return f"{prefix}{sep}{label_map.get(label, label)}" if sep else tag


def init_head_rows(hf_model: Any, path: Path, label_map: Mapping[str, str]) -> dict[str, str]:
    """Copy the rows of the head stored in ``path`` into ``hf_model``'s head for matching tags.

    A tag of ``hf_model`` matches the stored tag with the same prefix and the label
    ``label_map[label]`` (or the same label when it is not mapped); ``O`` matches ``O``.
    Other rows keep their fresh initialisation. Returns ``{new tag: stored tag}`` of the
    copied rows (empty when ``path`` holds a bare encoder).
    """
    import torch

    files = weight_files(path)
    base_tags = _base_tags(_config(path), files)
    if base_tags is None:
        return {}
    weight, bias = _head_tensors(files)
    base_index = {tag: i for i, tag in enumerate(base_tags)}
    id2label = hf_model.config.id2label
    copied = {}
    with torch.no_grad():
        for i in range(len(id2label)):
            source = _map_tag(id2label[i], label_map)
            if source in base_index:
                hf_model.classifier.weight[i] = weight[base_index[source]]
                hf_model.classifier.bias[i] = bias[base_index[source]]
                copied[id2label[i]] = source
    return copied


def training_model(path: Path, tags: tuple[str, ...], settings: Settings) -> tuple[Any, dict[str, float]]:
    """The module to train for ``tags`` from ``path`` as ``settings`` configure it, and its trainable
    parameter counts (both printed).

    With ``head_label_map`` set, the head rows of tags whose (mapped) label the stored head already
    has are copied from it; with ``lora_r > 0`` the encoder is frozen and wrapped with LoRA adapters
    (the head stays trainable); ``freeze_embeddings`` keeps the input embeddings as pretrained.
    """
    from wasabi import msg

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
    return hf_model, report


def load_with_adapter(base_dir: str | Path, adapter_dir: str | Path) -> Any:
    """A base encoder (or trained distilner model) directory plus a saved adapter -> the trained classifier.

    For a pipeline trained with LoRA the adapter is ``<pipeline>/<component>/model/adapter``.
    """
    tags = tuple(srsly.read_json(Path(adapter_dir) / TAGS_FILE))
    return load_adapter(load_for_training(Path(base_dir), tags), adapter_dir)


def lr_scale(name: str, head: float) -> float:
    """The learning-rate scale of the parameter ``name``: ``head`` in the classifier head (peft's
    copy included: ``...classifier.modules_to_save...``), 1 elsewhere."""
    return head if "classifier" in name.split(".") else 1.0
