"""Tiny random-weight token classifiers and tokenizers, built locally (no hub)."""

from __future__ import annotations

import string
from pathlib import Path
from typing import Sequence

import torch
from transformers import DistilBertConfig, DistilBertForTokenClassification, DistilBertTokenizerFast

IOB2 = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC")
BILOU = ("O",) + tuple(f"{p}-{lab}" for lab in ("PER", "ORG", "LOC", "MISC") for p in "BILU")
WORDS = (
    "the a of to and in is was for on with as by at from new york london paris john smith mary "
    "apple google united states germany president said today company city people world year "
    "'s n't . , - ( ) \" ' : ; ! ?"
).split()


def write_vocab(path: Path, words: Sequence[str] = WORDS) -> Path:
    """A WordPiece vocab: specials, single characters, ``##`` characters and some words."""
    chars = string.ascii_letters + string.digits + string.punctuation + "éèàüöäçñßåøæ"
    entries = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    entries += list(chars) + [f"##{c}" for c in chars] + [w for w in words if w not in chars]
    path.write_text("\n".join(dict.fromkeys(entries)) + "\n", encoding="utf8")
    return path


def make_tiny_model(
    out_dir: Path,
    tags: Sequence[str] = IOB2,
    seed: int = 0,
    max_position_embeddings: int = 64,
    lowercase: bool = True,
) -> Path:
    """Save a random 2-layer DistilBertForTokenClassification and its fast tokenizer."""
    out_dir.mkdir(parents=True, exist_ok=True)
    vocab = write_vocab(out_dir / "vocab.txt")
    tokenizer = DistilBertTokenizerFast(
        vocab_file=str(vocab), do_lower_case=lowercase, model_max_length=max_position_embeddings
    )
    torch.manual_seed(seed)
    config = DistilBertConfig(
        vocab_size=len(tokenizer),
        dim=32,
        hidden_dim=64,
        n_layers=2,
        n_heads=2,
        max_position_embeddings=max_position_embeddings,
        id2label=dict(enumerate(tags)),
        label2id={t: i for i, t in enumerate(tags)},
    )
    model = DistilBertForTokenClassification(config)
    with torch.no_grad():  # spread the logits so argmax tags vary along a text
        model.classifier.weight.mul_(20.0)
    model.save_pretrained(str(out_dir), safe_serialization=True)
    tokenizer.save_pretrained(str(out_dir))
    return out_dir
