"""LoRA fine-tuning through peft: wrap, report, save / load the adapter, merge.

peft is imported only inside these functions, so loading a saved pipeline (whose
weights are stored merged) never needs it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import srsly

from ..loading import TAGS_FILE, is_lora, merge, save_adapter  # noqa: F401  (the saving half lives with the model files)

ATTENTION = ("q_lin", "k_lin", "v_lin", "out_lin")
FFN = ("lin1", "lin2")


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


def load_adapter(base_hf_model: Any, path: str | Path) -> Any:
    """Apply the adapter saved in ``path`` to ``base_hf_model`` (whose head has the adapter's tags); eval mode."""
    from peft import PeftModel

    return PeftModel.from_pretrained(base_hf_model, str(path), is_trainable=False).eval()


def load_with_adapter(base_dir: str | Path, adapter_dir: str | Path) -> Any:
    """A base encoder (or trained distilner model) directory plus a saved adapter -> the trained classifier.

    For a pipeline trained with LoRA the adapter is ``<pipeline>/<component>/model/adapter``.
    """
    from ..loading import load_for_training

    tags = tuple(srsly.read_json(Path(adapter_dir) / TAGS_FILE))
    return load_adapter(load_for_training(Path(base_dir), tags), adapter_dir)
