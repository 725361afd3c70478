"""Length-preserving case changes: lowercase, UPPERCASE, Title Case.

Python's ``str.upper`` and ``str.title`` can change a string's length (``"ß".upper() == "SS"``,
``"ŉ".upper() == "ʼN"``, ``"İ".lower()`` is two code points), which would move every character
offset after it. These functions map one character at a time and keep a character unchanged
where its case mapping is not a single character, so ``len(recase(text, c)) == len(text)`` and
every offset, token and entity span of the original text indexes the recased text too.
"""

from __future__ import annotations

import re
from typing import Literal

Casing = Literal["as-given", "lower", "upper", "title"]
CASINGS: tuple[Casing, ...] = ("as-given", "lower", "upper", "title")


def _map(ch: str, fn: str) -> str:
    mapped = getattr(ch, fn)()
    return mapped if len(mapped) == 1 else ch


def recase(text: str, casing: Casing) -> str:
    """``text`` in ``casing``, one character for one character (title: the first letter of each
    run of letters upper, the rest lower, as ``str.title`` does)."""
    if casing == "as-given":
        return text
    if casing == "lower":
        return "".join(_map(ch, "lower") for ch in text)
    if casing == "upper":
        return "".join(_map(ch, "upper") for ch in text)
    if casing == "title":
        out, prev_cased = [], False
        for ch in text:
            out.append(_map(ch, "lower" if prev_cased else "upper"))
            prev_cased = ch.isalpha()
        return "".join(out)
    raise ValueError(f"casing must be one of {', '.join(CASINGS)}, got {casing!r}")


def is_all_caps(text: str, min_letters: int = 2) -> bool:
    """Whether ``text`` has at least ``min_letters`` cased letters and none of them is lowercase."""
    cased = [ch for ch in text if ch.isupper() or ch.islower()]
    return len(cased) >= min_letters and not any(ch.islower() for ch in cased)


CapsView = Literal["as-given", "lower", "title"]
_WORD = re.compile(r"\S+")
_MARKUP = re.compile(r"\[[^\]\s]*\]|<[^>\s]*>")  # [PAD], [SEP], <s>: markup, never a name


def _caps_words(text: str, min_words: int) -> list[tuple[int, int]]:
    """Character ranges of the ALL-CAPS words that stand in runs of at least ``min_words`` of them
    within a line. Words without cased letters (numbers, dashes, dates) and bracketed markup
    (``[SEP]``, ``<s>``) continue a run without counting; a word with a lowercase letter or a line
    break ends it."""
    found: list[tuple[int, int]] = []
    run: list[tuple[int, int]] = []
    last = 0
    for m in _WORD.finditer(text):
        word = m.group()
        lower = any(ch.islower() for ch in word)
        if lower or "\n" in text[last : m.start()]:
            found.extend(run if len(run) >= min_words else [])
            run = []
        last = m.end()
        if not lower and not _MARKUP.fullmatch(word) and any(ch.isupper() for ch in word):
            run.append((m.start(), m.end()))
    found.extend(run if len(run) >= min_words else [])
    return found


def caps_view(text: str, view: CapsView, min_words: int = 3) -> str:
    """The text the model reads: the words of runs of ``min_words`` or more ALL-CAPS words (headlines,
    forms, shouting) shown lowercased or Title Cased, everything else as given. Same length as
    ``text``, so every offset the tokenizer reports on the view indexes ``text``."""
    if view == "as-given":
        return text
    chars = list(text)
    for a, b in _caps_words(text, min_words):
        chars[a:b] = recase(text[a:b], view)
    return "".join(chars)
