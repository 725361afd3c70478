"""Ship a trained pipeline's model inside the package as the default model (fp16 safetensors)."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import spacy

from ..component import SETTINGS_KEYS
from ..loading import KNOWN_MODELS


def ship(pipeline_dir: Path, target: Path = KNOWN_MODELS["default"], card: Path | None = None) -> Path:
    """Write the pipeline's transformer as fp16 safetensors shards (< 50 MB each) plus tokenizer and settings."""
    import torch

    nlp = spacy.load(pipeline_dir)
    pipe = nlp.get_pipe("distilner")
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    model = pipe.hf_model.to(torch.float16)
    model.save_pretrained(str(target), safe_serialization=True, max_shard_size="50MB")
    pipe.hf_tokenizer.save_pretrained(str(target))
    settings = {k: pipe.cfg[k] for k in SETTINGS_KEYS}
    (target / "distilner.json").write_text(json.dumps(settings, indent=2))
    if card is not None:
        shutil.copy(card, target / "MODEL_CARD.md")
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("pipeline_dir", type=Path)
    parser.add_argument("--card", type=Path, default=None)
    args = parser.parse_args()
    print(ship(args.pipeline_dir, card=args.card))


if __name__ == "__main__":
    main()
