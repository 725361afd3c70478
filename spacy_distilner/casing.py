"""Length-preserving case changes: lowercase, UPPERCASE, Title Case.

Python's ``str.upper`` and ``str.title`` can change a string's length (``"ß".upper() == "SS"``,
``"ŉ".upper() == "ʼN"``, ``"İ".lower()`` is two code points), which would move every character
offset after it. These functions map one character at a time and keep a character unchanged
where its case mapping is not a single character, so ``len(recase(text, c)) == len(text)`` and
every offset, token and entity span of the original text indexes the recased text too.
"""

from __future__ import annotations

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
