"""Streaming input and output for annotation, shared by the ``distilner`` CLI and the Python API.

Readers yield ``(text, meta)`` records, or an ``InputError`` for each line (or file) that
cannot be read, so nothing is lost silently and the caller decides whether to skip or stop.
Files are opened in binary and decoded line by line: one bad line never stops the stream.
Writers take Docs (the record's meta rides along in ``doc.user_data["meta"]``) and write
``entity_record.doc_to_json``'s records.
``load_pipeline`` builds the pipeline that every annotation path (CLI, Ray actors) runs.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Iterator, Literal, Optional, Sequence, Union

import spacy
from spacy import displacy
from spacy.displacy.render import DEFAULT_ENTITY_COLOR, DEFAULT_LABEL_COLORS
from spacy.language import Language
from spacy.tokens import Doc, DocBin

from .component import DistilNER, component_name
from .entity_record import META_KEY, doc_to_json
from .errors import Errors

InputFormat = Literal["auto", "text", "jsonl"]
Record = tuple[str, Any]  # (text, meta)
JSONL_SUFFIXES = (".jsonl", ".ndjson")
LABEL_COLORS = {**DEFAULT_LABEL_COLORS, "PER": DEFAULT_LABEL_COLORS["PERSON"], "MISC": "#e4e7d2"}
LOW_COLOR = "#ff8197"  # background of entities below the ``low`` confidence in ``render_html``
LOW_MARKER = "?"  # appended to their label


@dataclass(frozen=True)
class InputError:
    """A line (or, for a directory, a file) that could not be read as a record."""

    source: str
    line: Optional[int]
    reason: str

    def __str__(self) -> str:
        where = self.source if self.line is None else f"{self.source}:{self.line}"
        return f"{where}: {self.reason}"


def _utf8_reason(err: UnicodeDecodeError) -> str:
    return f"invalid UTF-8 ({err.reason} at byte {err.start})"


def _decoded(lines: Iterable[bytes], source: str) -> Iterator[tuple[int, Union[str, InputError]]]:
    """``(line number, text without line ending)`` or an error per line; a BOM on line 1 is dropped."""
    for n, raw in enumerate(lines, 1):
        try:
            yield n, raw.decode("utf-8-sig" if n == 1 else "utf-8").rstrip("\r\n")
        except UnicodeDecodeError as err:
            yield n, InputError(source, n, _utf8_reason(err))


def read_text(lines: Iterable[bytes], source: str = "<text>") -> Iterator[Union[Record, InputError]]:
    """One document per line (empty lines are empty documents); meta is ``{"line": n}``."""
    for n, line in _decoded(lines, source):
        yield line if isinstance(line, InputError) else (line, {"line": n})


def _json_record(line: str, source: str, n: int, text_field: str, meta_field: str) -> Union[Record, InputError]:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as err:
        return InputError(source, n, f"invalid JSON ({err.msg}, column {err.colno})")
    if not isinstance(obj, dict):
        return InputError(source, n, f"expected a JSON object, got {type(obj).__name__}")
    text = obj.get(text_field)
    if not isinstance(text, str):
        return InputError(source, n, f"no string field '{text_field}'")
    try:
        text.encode("utf-8")  # JSON may escape lone surrogates, which no tokenizer accepts
    except UnicodeEncodeError:
        return InputError(source, n, f"field '{text_field}' holds a lone surrogate (not valid Unicode)")
    return text, obj.get(meta_field)


def read_jsonl(
    lines: Iterable[bytes], source: str = "<jsonl>", text_field: str = "text", meta_field: str = "meta"
) -> Iterator[Union[Record, InputError]]:
    """One JSON object per line: ``(obj[text_field], obj.get(meta_field))``; blank lines are ignored."""
    for n, line in _decoded(lines, source):
        if isinstance(line, InputError):
            yield line
        elif line.strip():
            yield _json_record(line, source, n, text_field, meta_field)


def read_dir(path: Path) -> Iterator[Union[Record, InputError]]:
    """One document per ``*.txt`` file under ``path`` (recursive, sorted); meta is ``{"file": relative path}``."""
    for file in sorted(path.rglob("*.txt")):
        try:
            yield file.read_bytes().decode("utf-8-sig"), {"file": file.relative_to(path).as_posix()}
        except UnicodeDecodeError as err:
            yield InputError(str(file), None, _utf8_reason(err))
        except OSError as err:
            yield InputError(str(file), None, f"unreadable ({err.strerror})")


def _sniff(source: str, lines: Iterator[bytes]) -> tuple[InputFormat, Iterator[bytes]]:
    """The format from the suffix (.jsonl/.ndjson, .txt), else JSONL when the first line starts with '{'."""
    suffix = Path(source).suffix.lower()
    if suffix in JSONL_SUFFIXES:
        return "jsonl", lines
    if suffix == ".txt":
        return "text", lines
    head = list(itertools.islice(lines, 1))
    first = head[0].lstrip(b"\xef\xbb\xbf \t") if head else b""
    return ("jsonl" if first.startswith(b"{") else "text"), itertools.chain(head, lines)


def read_records(
    source: str, fmt: InputFormat = "auto", text_field: str = "text", meta_field: str = "meta"
) -> Iterator[Union[Record, InputError]]:
    """Records from a text or JSONL file, ``"-"`` (stdin), or a directory of .txt files (``fmt`` is then unused)."""
    if source != "-" and Path(source).is_dir():
        yield from read_dir(Path(source))
        return
    opened = contextlib.nullcontext(sys.stdin.buffer) if source == "-" else open(source, "rb")
    with opened as stream:
        yield from read_stream(stream, "<stdin>" if source == "-" else source, fmt, text_field, meta_field)


def read_stream(
    lines: Iterable[bytes],
    source: str,
    fmt: InputFormat = "auto",
    text_field: str = "text",
    meta_field: str = "meta",
) -> Iterator[Union[Record, InputError]]:
    """Records from the lines of a text or JSONL stream named ``source`` (``auto``: by its suffix or first line)."""
    lines = iter(lines)
    if fmt == "auto":
        fmt, lines = _sniff(source, lines)
    if fmt == "jsonl":
        yield from read_jsonl(lines, source, text_field, meta_field)
    else:
        yield from read_text(lines, source)


def check_source(model: Optional[str], pipeline: Optional[Union[str, Path]]) -> None:
    """A pipeline is built from a model or loaded from a directory, not both."""
    if model is not None and pipeline is not None:
        raise ValueError("Use --model or --pipeline, not both.")


def load_pipeline(
    model: Optional[str] = None, pipeline: Optional[Union[str, Path]] = None, lang: str = "en", **settings: Any
) -> tuple[Language, DistilNER]:
    """distilner on ``model`` in a blank ``lang`` pipeline, or a saved ``pipeline``; settings other than None
    override the component's config. The model is loaded now, so that a bad one fails before any input is read.
    """
    check_source(model, pipeline)
    given = {key: val for key, val in settings.items() if val is not None}
    if pipeline is None:
        nlp = spacy.blank(lang)
        name = nlp.add_pipe("distilner", config={"model": model or "default", **given}).name
    else:
        name = component_name(spacy.util.load_config(Path(pipeline) / "config.cfg"))
        nlp = spacy.load(pipeline, config={"components": {name: given}})
    pipe = nlp.get_pipe(name)
    assert isinstance(pipe, DistilNER)
    _ = pipe.engine  # load now (an ONNX or TensorFlow backend without the torch module)
    return nlp, pipe


def pipe_records(
    nlp: Language, records: Iterable[Record], *, batch_size: int = 64, n_process: int = 1
) -> Iterator[Doc]:
    """``nlp.pipe`` over ``(text, meta)`` records, lazily; each meta is kept in ``doc.user_data["meta"]``."""
    for doc, meta in nlp.pipe(records, as_tuples=True, batch_size=batch_size, n_process=n_process):
        doc.user_data[META_KEY] = meta
        yield doc


def write_jsonl(docs: Iterable[Doc], stream: BinaryIO, tag_labels: Optional[Sequence[str]] = None) -> None:
    """One ``doc_to_json`` record per line, UTF-8."""
    for doc in docs:
        line = json.dumps(doc_to_json(doc, tag_labels), ensure_ascii=False)
        # a lone surrogate in meta is written back as its JSON escape (\udXXX), not as invalid UTF-8
        stream.write(line.encode("utf-8", "backslashreplace") + b"\n")


def write_docbin(docs: Iterable[Doc], path: Path) -> None:
    """A spaCy DocBin with user data (meta, confidences, and score arrays if stored).

    The format is one file written at the end: the Docs are held in compact array form until then.
    """
    db = DocBin(store_user_data=True)
    for doc in docs:
        db.add(doc)
    db.to_disk(path)


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """A temporary file beside ``path``, renamed onto it when the block succeeds and removed when it fails,
    so a crash never leaves a half-written file where a good one was."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # the mode a plain open() would give
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_output(output: str, inputs: Sequence[str]) -> None:
    """Refuse an ``output`` that would destroy an input or cannot be written (``-`` is stdout).

    Raises ``ValueError`` when the output is a directory, its directory is missing or not writable
    (D028), it is the same file as an input (through ``..``, a symlink or a hard link), or a ``.txt``
    file inside an input directory (it would be read as input).
    """
    if output == "-":
        return
    out = Path(output)
    if out.is_dir():
        raise ValueError(f"Output {output} is a directory; give a file name.")
    if not out.parent.is_dir():
        raise ValueError(f"Output directory does not exist: {out.parent}")
    try:  # atomic_output's temporary file goes beside the output
        with tempfile.TemporaryFile(dir=out.parent):
            pass
    except OSError as err:
        raise ValueError(Errors.D028.format(path=output, folder=out.parent, problem=err.strerror or err)) from err
    target = out.resolve()
    for source in inputs:
        if source == "-" or not Path(source).exists():
            continue
        src = Path(source)
        if src.is_dir():
            if target.suffix == ".txt" and src.resolve() in target.parents:
                raise ValueError(f"Output {output} is inside the input directory {source} and would be read as input.")
        elif target == src.resolve() or (out.exists() and os.path.samefile(out, src)):
            raise ValueError(f"Output {output} is the input file {source}; writing it would destroy the input.")


def write_docs(docs: Iterable[Doc], output: str, tag_labels: Optional[Sequence[str]] = None) -> None:
    """To a DocBin when ``output`` ends with ``.spacy``, else JSONL to the file or ``"-"`` (stdout).

    A file is written under a temporary name and renamed into place when complete.
    """
    if output == "-":
        write_jsonl(docs, sys.stdout.buffer, tag_labels)
        sys.stdout.buffer.flush()
        return
    with atomic_output(Path(output)) as tmp:
        if output.endswith(".spacy"):
            write_docbin(docs, tmp)
        else:
            with open(tmp, "wb") as stream:
                write_jsonl(docs, stream, tag_labels)


def render_html(docs: Iterable[Doc], low: float = 0.5) -> str:
    """A displaCy entity page; labels read "PER 0.97", entities below ``low`` confidence are red and marked "?"."""
    colors: dict[str, str] = {}
    pages = []
    for doc in docs:
        ents = []
        for ent in doc.ents:
            conf = ent._.confidence
            label = ent.label_ if conf is None else f"{ent.label_} {conf:.2f}"
            if conf is not None and conf < low:
                label = f"{label} {LOW_MARKER}"
                colors[label] = LOW_COLOR
            else:
                colors[label] = LABEL_COLORS.get(ent.label_, DEFAULT_ENTITY_COLOR)
            ents.append({"start": ent.start_char, "end": ent.end_char, "label": label})
        pages.append({"text": doc.text, "ents": ents, "title": None})
    return displacy.render(pages, style="ent", manual=True, page=True, jupyter=False, options={"colors": colors})
