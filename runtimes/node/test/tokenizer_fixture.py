"""Write ``tokenizer-fixture.json``: two small BERT WordPiece tokenizers (cased, uncased) and what the
Hugging Face ``tokenizers`` library makes of tricky texts (ids and character offsets), which
``tokenize.test.js`` checks the JS tokenizer against.

    python runtimes/node/test/tokenizer_fixture.py   # rewrites it; tests/test_node_runtime.py checks it is current
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIXTURE = Path(__file__).with_name("tokenizer-fixture.json")
VOCAB = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "m", "##u", "##ü", "##ller", "##l", "x", "john", "smith",
    "e", "é", "##t", "##e", "##té", "cafe", "café", "caf", "##é", "[", "]", ".", ",", "'", "s", "u", "c",
    "##ls", "h", "##i", "日", "本", "a", "b", "i", "İ", "σ", "##α", "##σ",
]  # fmt: skip
TEXTS = [
    "Mu\u0308ller x",  # decomposed: NFC composes it first
    "Mu\u0308 x",  # the combining mark is folded into the piece before it
    "John\u200b Smith",  # a format character is dropped
    "e\u0301t\u00e9 Caf\u00e9",
    "a\u00a0b\tc\r\nd\u0085e",  # whitespace; NEL is a control character
    "[CLS] hi [SEP]",  # literal special tokens are text
    "日本語",  # CJK ideographs are words of their own
    "x\x00y\ufffdz",
    "cafe's U.S.",
    "\U0001f4a9 e\u0301\u0301",  # outside the BMP; two combining marks
    "\u01c5 \u03a3\u0391\u03a3 \u0130",  # title case, sigma, dotted capital I
    "abcdefghijklm",  # longer than max_input_chars_per_word: one unknown piece
    "",
]


def fixture() -> dict[str, Any]:
    """Both tokenizers' ``tokenizer.json`` specs and their ids and offsets for ``TEXTS``."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    out: dict[str, Any] = {"texts": TEXTS}
    vocab = {v: i for i, v in enumerate(VOCAB)}
    specials = [("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])]
    for name, lowercase in (("cased", False), ("uncased", True)):
        tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=12))
        tok.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.BertNormalizer(lowercase=lowercase)])
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=specials)
        encodings = tok.encode_batch(TEXTS, add_special_tokens=False)
        out[name] = {
            "spec": json.loads(tok.to_str()),
            "expected": [{"ids": e.ids, "offsets": [list(o) for o in e.offsets]} for e in encodings],
        }
    return out


if __name__ == "__main__":
    FIXTURE.write_text(json.dumps(fixture(), ensure_ascii=False, indent=1) + "\n", encoding="utf8")
    print(f"wrote {FIXTURE}")
