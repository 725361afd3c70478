"""Ship a trained pipeline's model inside the package (fp16 safetensors) under a known model name."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Optional, Sequence

from ..loading import KNOWN_MODELS, write_model_settings
from ..records import load_pipeline


def ship(
    pipeline_dir: Path,
    target: Path = KNOWN_MODELS["default"],
    card: Optional[Path] = None,
    external_embeddings: Optional[str] = None,
    languages: Optional[Sequence[str]] = None,
) -> Path:
    """Write the pipeline's transformer as fp16 safetensors (shards < 50 MB) plus tokenizer and settings.

    ``external_embeddings``: a package of ``embeddings.SOURCES`` that rebuilds the word embeddings at
    load time; they are then left out. ``languages``: what the model is for (default: what it was
    trained on; ``[]``: any language, no warning).
    """
    import torch

    _, pipe = load_pipeline(pipeline=pipeline_dir, precision="fp32")  # fp32 in, fp16 out (never via bf16)
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    model = pipe.hf_model
    if external_embeddings:
        from ..embeddings import ship_without_embeddings

        ship_without_embeddings(model, pipe.hf_tokenizer, target, external_embeddings, torch.float16)
    else:
        model.to(torch.float16).save_pretrained(str(target), safe_serialization=True, max_shard_size="50MB")
        pipe.hf_tokenizer.save_pretrained(str(target))
    settings = pipe.engine.model_settings()
    if languages is not None:
        settings["languages"] = list(languages) or None
    write_model_settings(target, settings)
    if card is not None:
        shutil.copy(card, target / "MODEL_CARD.md")
    return target
