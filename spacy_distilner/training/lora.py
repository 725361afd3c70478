"""LoRA fine-tuning through peft: wrap, report, save / load the adapter, merge
(``training.heads.load_with_adapter`` puts a saved adapter back on its base).

peft is imported only inside these functions, so loading a saved pipeline (whose
weights are stored merged) never needs it; ``loading.save_model`` saves a LoRA model
through :func:`save_adapter` and :func:`merge`.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any, Sequence

import srsly

ATTENTION = ("q_lin", "k_lin", "v_lin", "out_lin")
FFN = ("lin1", "lin2")
TAGS_FILE = "tags.json"  # beside the peft files: the head's tags, in id order


def is_lora(model: Any) -> bool:
    """Whether ``model`` is a peft model (without importing peft when nothing has)."""
    peft = sys.modules.get("peft")
    return peft is not None and isinstance(model, peft.PeftModel)


def apply_lora(
    hf_model: Any,
    r: int,
    alpha: int,
    dropout: float,
    target_modules: Sequence[str] = ATTENTION,
    ffn: bool = False,
) -> Any:
    """Wrap a token classifier with LoRA adapters on ``target_modules`` (plus the FFN's ``lin1`` /
    ``lin2`` if ``ffn``); the encoder is frozen, the ``classifier`` head stays fully trainable."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=list(target_modules) + (list(FFN) if ffn else []),
        modules_to_save=["classifier"],
    )
    return get_peft_model(hf_model, config)


def trainable_report(model: Any) -> dict[str, float]:
    """Trainable and total parameter counts of ``model`` and the trainable share."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"trainable": trainable, "total": total, "share": trainable / total if total else 0.0}


def save_adapter(model: Any, path: str | Path) -> None:
    """Save only the adapter and the head (``adapter_model.safetensors``, ``adapter_config.json``)
    and the head's tags (``tags.json``) into ``path``."""
    path = Path(path)
    model.save_pretrained(str(path), safe_serialization=True)
    (path / "README.md").unlink(missing_ok=True)  # peft's generated model card
    id2label = model.get_base_model().config.id2label
    srsly.write_json(path / TAGS_FILE, [id2label[i] for i in range(len(id2label))])


def merge(model: Any) -> Any:
    """A plain transformers model with the LoRA weights folded in; ``model`` itself is unchanged."""
    return copy.deepcopy(model).merge_and_unload()


def load_adapter(base_hf_model: Any, path: str | Path) -> Any:
    """Apply the adapter saved in ``path`` to ``base_hf_model`` (whose head has the adapter's tags); eval mode."""
    from peft import PeftModel

    return PeftModel.from_pretrained(base_hf_model, str(path), is_trainable=False).eval()
