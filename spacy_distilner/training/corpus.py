"""Convert NER corpora (CoNLL-2003, WNUT-17, WikiANN, generic IOB, JSONL, DocBin) to spaCy DocBin files.

Reading rules, shared by all formats:

* A sentence ends at a blank line: empty, whitespace only (a WNUT-17 line holding only a
  tab counts), or holding only stray byte-order marks. U+FEFF is removed everywhere;
  CRLF line endings, trailing whitespace and a missing final blank line are fine.
* A line whose first column is ``-DOCSTART-`` separates documents. If a file has such
  lines, they alone delimit documents and ``sents_per_doc`` is ignored; otherwise every
  ``sents_per_doc`` consecutive sentences form one document.
* Tags must be ``O``, ``B-<label>`` or ``I-<label>`` (IOB1 or IOB2). The label is what
  follows the first hyphen, so ``B-creative-work`` has the label ``creative-work``. Any
  other tag raises ``ValueError`` naming the file and line.
* Tags become entity spans per sentence (entities never cross a sentence boundary):
  an entity runs from a ``B-X`` or ``I-X`` over the following ``I-X`` tags. An ``I-X``
  after ``O``, after a tag of another type, or at the start of a sentence therefore
  starts a new entity instead of being an error, and ``B-X`` always starts a new one.
* In a ``Doc`` the words, and the sentences of a document, are joined by single spaces;
  the last word has no trailing space.

Two more input formats, chosen by ``--fmt`` or by the suffix (``.jsonl``, ``.spacy``):

* ``jsonl``: one document per line, ``{"text": ..., "entities": [[start, end, label], ...]}``
  (``"spans"`` instead of ``"entities"``, and ``{"start", "end", "label"}`` objects instead of
  triples, are read too). Offsets are character offsets into ``text``, end exclusive; the text
  is tokenized by the blank ``--lang`` pipeline and every entity must start and end on its token
  boundaries. A bad line, bad offsets, a misaligned or an overlapping entity raise
  ``ValueError`` naming the file and line.
* ``spacy``: a DocBin, passed through (its entities and sentence starts are kept).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any, Iterator, Literal

import spacy
from spacy.language import Language
from spacy.tokens import Doc, DocBin
from spacy.training.iob_utils import iob_to_biluo
from spacy.vocab import Vocab

Format = Literal["conll2003", "wnut17", "wikiann", "iob"]
FORMATS: tuple[str, ...] = ("conll2003", "wnut17", "wikiann", "iob")
#: Every format ``convert`` reads: the CoNLL-style ones plus JSONL with character offsets and DocBin.
INPUT_FORMATS: tuple[str, ...] = FORMATS + ("jsonl", "spacy")
_SUFFIX_FORMATS = {".jsonl": "jsonl", ".spacy": "spacy"}
Sentence = list[tuple[str, str]]
Document = list[Sentence]

DOCSTART = "-DOCSTART-"
_TAG = re.compile(r"[BI]-\S+|O")
_WIKIANN_TOKEN = re.compile(r"([a-z][a-z_-]*):(.+)")
_DETECT_LINES = 200


def _clean(line: str) -> str:
    """Drop byte-order marks and trailing whitespace (including the line ending)."""
    return line.replace("\ufeff", "").rstrip()


def _is_marker(line: str) -> bool:
    """Whether a cleaned line is a ``-DOCSTART-`` document separator."""
    return bool(line) and line.split()[0] == DOCSTART


def _columns(line: str, fmt: Format) -> list[str]:
    """Split a cleaned, non-blank line into columns: tabs for WNUT-17/WikiANN, else whitespace."""
    return line.split("\t") if fmt in ("wnut17", "wikiann") else line.split()


def _parse_line(line: str, fmt: Format, where: str) -> tuple[str, str]:
    """Return ``(word, tag)`` of a cleaned, non-blank, non-``-DOCSTART-`` line."""
    cols = _columns(line, fmt)
    expected = {"conll2003": 4, "wnut17": 2, "wikiann": 2}.get(fmt)
    if (expected is not None and len(cols) != expected) or len(cols) < 2:
        need = f"{expected}" if expected is not None else "at least 2"
        raise ValueError(f"{where}: expected {need} columns for {fmt}, got {len(cols)}: {line!r}")
    word, tag = cols[0], cols[-1]
    if fmt == "wikiann":
        match = _WIKIANN_TOKEN.fullmatch(word)
        if match is None:
            raise ValueError(f"{where}: WikiANN token lacks a 'lang:' prefix: {word!r}")
        word = match.group(2)
    if not word.strip():
        raise ValueError(f"{where}: empty token in {line!r}")
    if _TAG.fullmatch(tag) is None:
        raise ValueError(f"{where}: tag {tag!r} is not IOB-like (expected O, B-<label> or I-<label>)")
    return word, tag


def detect_format(path: str | Path) -> Format:
    """Guess the format of ``path`` from its first content lines (``iob`` when unsure or empty)."""
    lines: list[str] = []
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = _clean(raw)
            if line and not _is_marker(line):
                lines.append(line)
                if len(lines) == _DETECT_LINES:
                    break
    if not lines:
        return "iob"
    if all(len(line.split("\t")) == 2 for line in lines):
        prefixes = {
            m.group(1) if (m := _WIKIANN_TOKEN.fullmatch(line.split("\t")[0])) else None
            for line in lines
        }
        return "wikiann" if len(prefixes) == 1 and None not in prefixes else "wnut17"
    if all(len(line.split()) == 4 for line in lines):
        return "conll2003"
    return "iob"


def _has_doc_markers(path: str | Path) -> bool:
    """Whether ``path`` has any ``-DOCSTART-`` line."""
    with open(path, encoding="utf-8") as f:
        return any(_is_marker(_clean(line)) for line in f)


def _read_sentences(path: str | Path, fmt: Format) -> Iterator[Sentence | None]:
    """Yield the sentences of ``path`` in order, and ``None`` at each ``-DOCSTART-`` line."""
    sentence: Sentence = []
    with open(path, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, start=1):
            line = _clean(raw)
            is_marker = _is_marker(line)
            if not line or is_marker:
                if sentence:
                    yield sentence
                    sentence = []
                if is_marker:
                    yield None
                continue
            sentence.append(_parse_line(line, fmt, f"{path}:{lineno}"))
    if sentence:
        yield sentence


def read_conll(
    path: str | Path, fmt: Format | Literal["auto"] = "auto", sents_per_doc: int = 1
) -> Iterator[Document]:
    """Yield the documents of ``path`` as lists of sentences of ``(word, tag)`` pairs.

    Documents follow the ``-DOCSTART-`` lines when the file has any, else they are
    groups of ``sents_per_doc`` sentences (the last group may be shorter).
    """
    if sents_per_doc < 1:
        raise ValueError(f"sents_per_doc must be >= 1, got {sents_per_doc}")
    if fmt == "auto":
        fmt = detect_format(path)
    elif fmt not in FORMATS:
        raise ValueError(f"Unknown format {fmt!r}; choose one of: auto, {', '.join(FORMATS)}")
    by_markers = _has_doc_markers(path)
    doc: Document = []
    for sentence in _read_sentences(path, fmt):
        if sentence is not None:
            doc.append(sentence)
        if doc and (sentence is None or (not by_markers and len(doc) == sents_per_doc)):
            yield doc
            doc = []
    if doc:
        yield doc


def to_iob2(tags: list[str]) -> list[str]:
    """Rewrite one sentence's IOB1/IOB2 tags as IOB2 (every entity opens with ``B-``).

    An ``I-X`` that follows ``O`` or another type (or opens the sentence) starts a new entity.
    Only the prefix is mapped back from BILUO, as ``biluo_to_iob`` would also rewrite a
    ``U-``/``L-`` inside a label such as ``URL-LINK``.
    """
    return [tag if tag == "O" else ("B" if tag[0] in "BU" else "I") + tag[1:] for tag in iob_to_biluo(tags)]


def conll_to_docs(
    path: str | Path,
    nlp_or_vocab: Language | Vocab,
    fmt: Format | Literal["auto"] = "auto",
    sents_per_doc: int = 1,
) -> Iterator[Doc]:
    """Yield one ``Doc`` per document of ``path``, with sentence starts and entities set."""
    vocab = nlp_or_vocab.vocab if isinstance(nlp_or_vocab, Language) else nlp_or_vocab
    for document in read_conll(path, fmt, sents_per_doc):
        words = [word for sentence in document for word, _ in sentence]
        sent_starts = [i == 0 for sentence in document for i in range(len(sentence))]
        # IOB2 per sentence, so that no entity runs on into the next sentence.
        ents = [tag for sentence in document for tag in to_iob2([t for _, t in sentence])]
        spaces = [True] * (len(words) - 1) + [False]
        yield Doc(vocab, words=words, spaces=spaces, sent_starts=sent_starts, ents=ents)


def _entity(item: Any, where: str) -> tuple[int, int, str]:
    """``[start, end, label]`` or ``{"start", "end", "label"}`` -> a checked triple."""
    if isinstance(item, dict):
        item = [item.get("start"), item.get("end"), item.get("label")]
    if not (isinstance(item, (list, tuple)) and len(item) == 3):
        raise ValueError(f"{where}: an entity must be [start, end, label] or {{start, end, label}}, got {item!r}")
    start, end, label = item
    if not (type(start) is int and type(end) is int and isinstance(label, str) and label):
        raise ValueError(f"{where}: entity {item!r} needs integer offsets and a non-empty label")
    return start, end, label


def jsonl_to_docs(path: str | Path, nlp: Language) -> Iterator[Doc]:
    """Yield one ``Doc`` per non-blank line of a JSONL file with character-offset entities."""
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{where}: invalid JSON ({err})") from err
            if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                raise ValueError(f"{where}: expected an object with a \"text\" string")
            text = record["text"]
            doc = nlp.make_doc(text)
            items = record.get("spans", record.get("entities")) or []
            if not isinstance(items, list):
                raise ValueError(f"{where}: \"entities\" / \"spans\" must be a list, got {items!r}")
            spans = []
            for item in items:
                start, end, label = _entity(item, where)
                if not 0 <= start < end <= len(text):
                    raise ValueError(
                        f"{where}: entity ({start}, {end}, {label!r}) is outside the text of {len(text)} characters"
                    )
                span = doc.char_span(start, end, label=label)
                if span is None:
                    tokens = doc.char_span(start, end, alignment_mode="expand")
                    raise ValueError(
                        f"{where}: entity {text[start:end]!r} ({start}, {end}, {label!r}) does not start and end "
                        f"on token boundaries; the tokens it touches are {[t.text for t in tokens]}"
                    )
                spans.append(span)
            try:
                doc.set_ents(spans, default="outside")
            except ValueError as err:
                offsets = [(span.start_char, span.end_char, span.label_) for span in spans]
                raise ValueError(f"{where}: overlapping entities {offsets}") from err
            yield doc


def read_docs(
    path: str | Path, nlp: Language, fmt: str = "auto", sents_per_doc: int = 1
) -> tuple[str, Iterator[Doc]]:
    """The format of ``path`` (``auto``: by suffix, else detected) and its documents as ``Doc`` objects."""
    if fmt == "auto":
        fmt = _SUFFIX_FORMATS.get(Path(path).suffix) or detect_format(path)
    if fmt == "spacy":
        return fmt, DocBin().from_disk(path).get_docs(nlp.vocab)
    if fmt == "jsonl":
        return fmt, jsonl_to_docs(path, nlp)
    return fmt, conll_to_docs(path, nlp, fmt, sents_per_doc)  # type: ignore[arg-type]


def convert(
    input_path: str | Path,
    output_path: str | Path,
    fmt: str = "auto",
    lang: str = "en",
    sents_per_doc: int = 1,
) -> dict:
    """Write the documents of ``input_path`` to the DocBin ``output_path`` and return statistics.

    The result holds ``format`` (as detected when ``fmt="auto"``), ``docs``, ``sentences``
    (a Doc without sentence starts counts as one), ``tokens`` and ``entities`` (a count per
    label, sorted by label).
    """
    fmt, docs = read_docs(input_path, spacy.blank(lang), fmt, sents_per_doc)
    doc_bin = DocBin()
    n_sents = n_tokens = 0
    labels: Counter[str] = Counter()
    for doc in docs:
        doc_bin.add(doc)
        n_sents += sum(1 for _ in doc.sents) if doc.has_annotation("SENT_START") else 1
        n_tokens += len(doc)
        labels.update(ent.label_ for ent in doc.ents)
    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    doc_bin.to_disk(output_path)
    return {
        "format": fmt,
        "docs": len(doc_bin),
        "sentences": n_sents,
        "tokens": n_tokens,
        "entities": dict(sorted(labels.items())),
    }


def format_stats(stats: dict) -> str:
    """Render the result of ``convert`` as a few lines of text."""
    lines = [
        f"format: {stats['format']}",
        f"docs: {stats['docs']}  sentences: {stats['sentences']}  tokens: {stats['tokens']}  "
        f"entities: {sum(stats['entities'].values())}",
    ]
    lines += [f"  {label}: {count}" for label, count in stats["entities"].items()]
    return "\n".join(lines)
