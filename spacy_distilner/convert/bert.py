"""Map a BERT encoder (``BertModel`` state dict, config, WordPiece tokenizer) onto ``DistilBertModel``."""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer
from transformers import BertConfig, DistilBertConfig, DistilBertTokenizerFast

#: ``DistilBertModel`` hard-codes ``nn.LayerNorm(..., eps=1e-12)``.
DISTILBERT_LAYER_NORM_EPS = 1e-12

#: per-layer BERT sub-module -> DistilBERT sub-module (``.weight`` / ``.bias`` appended)
_LAYER_MAP: dict[str, str] = {
    "attention.self.query": "attention.q_lin",
    "attention.self.key": "attention.k_lin",
    "attention.self.value": "attention.v_lin",
    "attention.output.dense": "attention.out_lin",
    "attention.output.LayerNorm": "sa_layer_norm",
    "intermediate.dense": "ffn.lin1",
    "output.dense": "ffn.lin2",
    "output.LayerNorm": "output_layer_norm",
}


def distilbert_config_from_bert(bert_config: BertConfig) -> DistilBertConfig:
    """The ``DistilBertConfig`` with the same shapes as ``bert_config``.

    Raises ``ValueError`` for BERT variants DistilBERT cannot express exactly
    (relative position embeddings, a LayerNorm eps other than DistilBERT's fixed 1e-12).
    """
    positions = getattr(bert_config, "position_embedding_type", "absolute")  # transformers 5: absolute only, no field
    if positions != "absolute":
        raise ValueError(f"unsupported position_embedding_type {positions!r}")
    if bert_config.layer_norm_eps != DISTILBERT_LAYER_NORM_EPS:
        raise ValueError(
            f"BERT layer_norm_eps={bert_config.layer_norm_eps} but DistilBertModel hard-codes "
            f"{DISTILBERT_LAYER_NORM_EPS}"
        )
    return DistilBertConfig(
        vocab_size=bert_config.vocab_size,
        max_position_embeddings=bert_config.max_position_embeddings,
        sinusoidal_pos_embds=False,
        n_layers=bert_config.num_hidden_layers,
        n_heads=bert_config.num_attention_heads,
        dim=bert_config.hidden_size,
        hidden_dim=bert_config.intermediate_size,
        dropout=bert_config.hidden_dropout_prob,
        attention_dropout=bert_config.attention_probs_dropout_prob,
        activation=bert_config.hidden_act,
        initializer_range=bert_config.initializer_range,
        pad_token_id=bert_config.pad_token_id,
    )


def bert_state_dict_to_distilbert(sd: dict[str, torch.Tensor], n_layers: int) -> dict[str, torch.Tensor]:
    """Rename a ``BertModel`` state dict to ``DistilBertModel`` keys.

    DistilBERT has no token types, so ``token_type_embeddings[0]`` is folded into the
    position embeddings (exact for ``token_type_ids == 0``). The pooler is dropped.
    """
    out = {
        "embeddings.word_embeddings.weight": sd["embeddings.word_embeddings.weight"],
        "embeddings.position_embeddings.weight": sd["embeddings.position_embeddings.weight"]
        + sd["embeddings.token_type_embeddings.weight"][0],
        "embeddings.LayerNorm.weight": sd["embeddings.LayerNorm.weight"],
        "embeddings.LayerNorm.bias": sd["embeddings.LayerNorm.bias"],
    }
    for i in range(n_layers):
        for bert_name, distil_name in _LAYER_MAP.items():
            for param in ("weight", "bias"):
                out[f"transformer.layer.{i}.{distil_name}.{param}"] = sd[f"encoder.layer.{i}.{bert_name}.{param}"]
    return out


def save_distilbert_tokenizer(tokenizer_json: Path, out_dir: Path, do_lower_case: bool) -> None:
    """Wrap a BERT WordPiece ``tokenizer.json`` as ``DistilBertTokenizerFast`` and save it to ``out_dir``.

    Truncation/padding baked into the source file are dropped: they are per-call options in transformers.
    """
    tokenizer = Tokenizer.from_file(str(tokenizer_json))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    DistilBertTokenizerFast(
        tokenizer_object=tokenizer, do_lower_case=do_lower_case, model_max_length=512
    ).save_pretrained(out_dir)
