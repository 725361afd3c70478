"""Tests for the CoNLL / WNUT-17 / WikiANN to DocBin converter."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
import spacy
from spacy.tokens import Doc, DocBin
from typer.testing import CliRunner, Result

from spacy_distilner.cli import app
from spacy_distilner.training.corpus import (
    conll_to_docs,
    convert,
    detect_format,
    read_conll,
    to_iob2,
)

CONLL2003 = (
    "-DOCSTART- -X- -X- O\n"
    "\n"
    "EU NNP B-NP I-ORG\n"
    "rejects VBZ B-VP O\n"
    "German JJ B-NP I-MISC\n"
    "call NN I-NP O\n"
    "\n"
    "Smith NNP B-NP I-PER\n"
    "Jones NNP I-NP B-PER\n"
    "met VBD B-VP O\n"
    "Peter NNP B-NP B-PER\n"
    "Blackburn NNP I-NP I-PER\n"
    "\n"
    "-DOCSTART- -X- -X- O\n"
    "\n"
    "BRUSSELS NNP B-NP B-LOC   \n"  # trailing whitespace, and no final newline below
    "1996-08-22 CD I-NP O"
)

WNUT17 = (
    "@user\tO\n"
    "Empire\tB-location\n"
    "State\tI-location\n"
    "\t\n"  # a line holding only a tab ends the sentence
    "watch\tO\n"
    "Star\tI-creative-work\n"  # I- after O starts an entity
    "Wars\tI-creative-work\n"
    "\n"
    "Lil\tB-person\n"
    "Sly\tI-person\n"
    "Turn\tI-creative-work\n"  # I- after another type starts an entity
    "Up\tI-creative-work\n"
    "\t\n"
    "BTS\tB-group\n"
)

WIKIANN = "en:Sioux\tB-ORG\nen:Falls\tI-ORG\nen::\tO\nen:http://x.org\tO\n\nen:Paris\tB-LOC\n"

IOB = "Obama NNP B-PER\nvisits\tO\nBerlin B-LOC\n\nMerkel I-PER\n\nhi O\n"


def _write(tmp_path: Path, text: str, name: str = "data.txt", crlf: bool = False) -> Path:
    path = tmp_path / name
    path.write_bytes((text.replace("\n", "\r\n") if crlf else text).encode("utf-8"))
    return path


def _ents(doc: Doc) -> list[tuple[str, str, int, int]]:
    return [(ent.text, ent.label_, ent.start, ent.end) for ent in doc.ents]


def _sents(doc: Doc) -> list[str]:
    return [sent.text for sent in doc.sents]


@pytest.fixture(scope="module")
def vocab() -> spacy.vocab.Vocab:
    return spacy.blank("en").vocab


@pytest.mark.parametrize("crlf", [False, True])
def test_conll2003_docstart_grouping(tmp_path: Path, vocab: spacy.vocab.Vocab, crlf: bool) -> None:
    path = _write(tmp_path, CONLL2003, crlf=crlf)
    assert detect_format(path) == "conll2003"
    documents = list(read_conll(path))
    assert documents == [
        [
            [("EU", "I-ORG"), ("rejects", "O"), ("German", "I-MISC"), ("call", "O")],
            [("Smith", "I-PER"), ("Jones", "B-PER"), ("met", "O"), ("Peter", "B-PER"), ("Blackburn", "I-PER")],
        ],
        [[("BRUSSELS", "B-LOC"), ("1996-08-22", "O")]],
    ]
    # -DOCSTART- lines define the documents; sents_per_doc does not apply.
    assert list(read_conll(path, sents_per_doc=5)) == documents
    doc1, doc2 = conll_to_docs(path, vocab)
    assert doc1.text == "EU rejects German call Smith Jones met Peter Blackburn"
    assert _sents(doc1) == ["EU rejects German call", "Smith Jones met Peter Blackburn"]
    assert _ents(doc1) == [
        ("EU", "ORG", 0, 1),
        ("German", "MISC", 2, 3),
        ("Smith", "PER", 4, 5),
        ("Jones", "PER", 5, 6),
        ("Peter Blackburn", "PER", 7, 9),
    ]
    assert doc2.text == "BRUSSELS 1996-08-22"
    assert doc2[-1].whitespace_ == ""
    assert _ents(doc2) == [("BRUSSELS", "LOC", 0, 1)]


def test_wnut17_separators_hyphenated_labels_and_stray_i(tmp_path: Path, vocab: spacy.vocab.Vocab) -> None:
    path = _write(tmp_path, WNUT17)
    assert detect_format(path) == "wnut17"
    docs = list(conll_to_docs(path, vocab))
    assert [_sents(doc) for doc in docs] == [["@user Empire State"], ["watch Star Wars"], ["Lil Sly Turn Up"], ["BTS"]]
    assert [_ents(doc) for doc in docs] == [
        [("Empire State", "location", 1, 3)],
        [("Star Wars", "creative-work", 1, 3)],
        [("Lil Sly", "person", 0, 2), ("Turn Up", "creative-work", 2, 4)],
        [("BTS", "group", 0, 1)],
    ]
    doc1, doc2 = conll_to_docs(path, vocab, sents_per_doc=3)
    assert _sents(doc1) == ["@user Empire State", "watch Star Wars", "Lil Sly Turn Up"]
    assert [(ent.text, ent.label_) for ent in doc1.ents] == [
        ("Empire State", "location"),
        ("Star Wars", "creative-work"),
        ("Lil Sly", "person"),
        ("Turn Up", "creative-work"),
    ]
    assert _sents(doc2) == ["BTS"]


def test_wikiann_prefix_is_stripped(tmp_path: Path, vocab: spacy.vocab.Vocab) -> None:
    path = _write(tmp_path, WIKIANN)
    assert detect_format(path) == "wikiann"
    doc1, doc2 = conll_to_docs(path, vocab)
    assert [t.text for t in doc1] == ["Sioux", "Falls", ":", "http://x.org"]
    assert _ents(doc1) == [("Sioux Falls", "ORG", 0, 2)]
    assert _ents(doc2) == [("Paris", "LOC", 0, 1)]
    with pytest.raises(ValueError, match=r"data\.txt:1: .*lang:"):
        list(read_conll(_write(tmp_path, "Sioux\tB-ORG\n"), fmt="wikiann"))


def test_generic_iob(tmp_path: Path, vocab: spacy.vocab.Vocab) -> None:
    path = _write(tmp_path, IOB)
    assert detect_format(path) == "iob"
    documents = list(read_conll(path, sents_per_doc=2))
    assert documents == [
        [[("Obama", "B-PER"), ("visits", "O"), ("Berlin", "B-LOC")], [("Merkel", "I-PER")]],
        [[("hi", "O")]],
    ]
    doc = next(conll_to_docs(path, vocab, sents_per_doc=2))
    assert _ents(doc) == [("Obama", "PER", 0, 1), ("Berlin", "LOC", 2, 3), ("Merkel", "PER", 3, 4)]
    with_markers = _write(tmp_path, "-DOCSTART- O\n" + IOB, name="marked.txt")
    assert len(list(read_conll(with_markers, sents_per_doc=2))) == 1


def test_entities_never_cross_sentences(tmp_path: Path, vocab: spacy.vocab.Vocab) -> None:
    path = _write(tmp_path, "Ann B-PER\n\nLee I-PER\nSmith I-PER\n")
    (doc,) = conll_to_docs(path, vocab, sents_per_doc=2)
    assert _sents(doc) == ["Ann", "Lee Smith"]
    assert _ents(doc) == [("Ann", "PER", 0, 1), ("Lee Smith", "PER", 1, 3)]


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        (["B-X", "I-X", "O"], ["B-X", "I-X", "O"]),
        (["I-X", "I-X", "B-X"], ["B-X", "I-X", "B-X"]),
        (["O", "I-X", "I-Y", "B-Y", "I-Y"], ["O", "B-X", "B-Y", "B-Y", "I-Y"]),
        (["B-a-b", "I-a-b", "I-a-c"], ["B-a-b", "I-a-b", "B-a-c"]),
        (["B-URL-LINK", "I-URL-LINK", "O", "I-U-BOAT"], ["B-URL-LINK", "I-URL-LINK", "O", "B-U-BOAT"]),
        ([], []),
    ],
)
def test_to_iob2(tags: list[str], expected: list[str]) -> None:
    assert to_iob2(tags) == expected


def test_byte_order_marks(tmp_path: Path) -> None:
    path = _write(tmp_path, "\ufeffHello\tO\nDubbz\ufeff\tB-person\n\ufeff\nBye\tO\n")
    assert list(read_conll(path)) == [[[("Hello", "O"), ("Dubbz", "B-person")]], [[("Bye", "O")]]]


@pytest.mark.parametrize("tag", ["X-PER", "B-", "b-PER", "BPER", "U-PER", "I"])
@pytest.mark.parametrize("crlf", [False, True])
def test_bad_tag_names_file_and_line(tmp_path: Path, tag: str, crlf: bool) -> None:
    path = _write(tmp_path, f"-DOCSTART- O\n\nParis {tag}\n", crlf=crlf)
    with pytest.raises(ValueError, match=rf"data\.txt:3: tag '{re.escape(tag)}' is not IOB-like"):
        list(read_conll(path))


def test_bad_lines(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"data\.txt:2: expected 4 columns"):
        list(read_conll(_write(tmp_path, "EU NNP B-NP B-ORG\nrejects O\n"), fmt="conll2003"))
    with pytest.raises(ValueError, match=r"data\.txt:1: expected 2 columns"):
        list(read_conll(_write(tmp_path, "Empire\t\n"), fmt="wnut17"))
    with pytest.raises(ValueError, match=r"data\.txt:1: expected at least 2 columns"):
        list(read_conll(_write(tmp_path, "Empire\n")))
    with pytest.raises(ValueError, match="sents_per_doc"):
        list(read_conll(_write(tmp_path, "a O\n"), sents_per_doc=0))
    with pytest.raises(ValueError, match="Unknown format"):
        list(read_conll(_write(tmp_path, "a O\n"), fmt="conllu"))  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["", "\n\n", "\t\n \r\n", "-DOCSTART- -X- -X- O\n\n"])
def test_empty_files(tmp_path: Path, text: str) -> None:
    path = _write(tmp_path, text)
    assert list(read_conll(path)) == []
    stats = convert(path, tmp_path / "out" / "empty.spacy")
    assert stats["docs"] == stats["sentences"] == stats["tokens"] == 0
    assert stats["entities"] == {}
    assert len(DocBin().from_disk(tmp_path / "out" / "empty.spacy")) == 0


def _corpus_cli(*args: str | Path) -> Result:
    """``distilner corpus ARGS``."""
    return CliRunner().invoke(app, ["corpus", *map(str, args)])


def test_convert_and_cli(tmp_path: Path) -> None:
    path = _write(tmp_path, CONLL2003, crlf=True)
    out = tmp_path / "out.spacy"
    result = _corpus_cli(path, out, "--fmt", "conll2003", "--lang", "en")
    assert result.exit_code == 0, result.output
    printed = result.stdout
    assert "docs: 2  sentences: 3  tokens: 11  entities: 6" in printed
    assert "  PER: 3\n" in printed
    nlp = spacy.blank("en")
    loaded = list(DocBin().from_disk(out).get_docs(nlp.vocab))
    expected = list(conll_to_docs(path, nlp))
    assert [d.text for d in loaded] == [d.text for d in expected]
    assert [_sents(d) for d in loaded] == [_sents(d) for d in expected]
    assert [_ents(d) for d in loaded] == [_ents(d) for d in expected]
    assert convert(path, out) == {
        "format": "conll2003",
        "docs": 2,
        "sentences": 3,
        "tokens": 11,
        "entities": {"LOC": 1, "MISC": 1, "ORG": 1, "PER": 3},
    }


def test_cli_reports_bad_input_without_a_traceback(tmp_path: Path) -> None:
    path = _write(tmp_path, "EU B-ORG\nrejects X-MISC\n")
    result = _corpus_cli(path, tmp_path / "out.spacy", "--fmt", "iob")
    assert result.exit_code == 2, result.output
    assert "data.txt:2: tag 'X-MISC' is not IOB-like" in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "out.spacy").exists()
    result = _corpus_cli(path, tmp_path / "out.spacy", "--fmt", "conll")
    assert result.exit_code == 2 and "'conll' is not one of auto, conll2003" in result.stderr


JSONL = (
    '{"text": "Obama visited Berlin.", "entities": [[0, 5, "PER"], [14, 20, "LOC"]]}\n'
    "\n"  # blank lines are skipped
    '{"text": "Ich mag New York", "spans": [{"start": 8, "end": 16, "label": "LOC"}], "meta": {"id": 2}}\n'
    '{"text": "nothing here"}\n'
)


def test_jsonl_with_character_offsets(tmp_path: Path) -> None:
    path = _write(tmp_path, JSONL, "data.jsonl")
    result = _corpus_cli(path, tmp_path / "out.spacy")  # format from the suffix
    assert result.exit_code == 0 and "format: jsonl" in result.stdout, result.output
    docs = list(DocBin().from_disk(tmp_path / "out.spacy").get_docs(spacy.blank("en").vocab))
    assert [d.text for d in docs] == ["Obama visited Berlin.", "Ich mag New York", "nothing here"]
    assert [_ents(d) for d in docs] == [
        [("Obama", "PER", 0, 1), ("Berlin", "LOC", 2, 3)], [("New York", "LOC", 2, 4)], []
    ]
    assert [t.ent_iob_ for t in docs[2]] == ["O", "O"]  # annotated as outside, not missing
    stats = convert(path, tmp_path / "out.spacy", fmt="jsonl")
    assert stats == {"format": "jsonl", "docs": 3, "sentences": 3, "tokens": 10, "entities": {"LOC": 2, "PER": 1}}


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ('{"text": "Paris", ', "invalid JSON"),
        ('["Paris"]', 'an object with a "text" string'),
        ('{"entities": []}', 'an object with a "text" string'),
        ('{"text": "Paris", "entities": {"start": 0}}', "must be a list"),
        ('{"text": "Paris", "entities": [[0, 5]]}', r"must be \[start, end, label\]"),
        ('{"text": "Paris", "entities": [[0, 5.0, "LOC"]]}', "integer offsets"),
        ('{"text": "Paris", "entities": [[0, 5, ""]]}', "non-empty label"),
        ('{"text": "Paris", "entities": [[0, 6, "LOC"]]}', r"outside the text of 5 characters"),
        ('{"text": "Paris", "entities": [[3, 3, "LOC"]]}', r"outside the text"),
        (
            '{"text": "in Paris", "entities": [[4, 8, "LOC"]]}',
            r"'aris' \(4, 8, 'LOC'\) does not start and end on token boundaries; the tokens it touches are \['Paris'\]",
        ),
        ('{"text": "in Paris", "entities": [[2, 8, "LOC"]]}', r"' Paris' .* does not start and end on token"),
        ('{"text": "New York", "entities": [[0, 8, "LOC"], [4, 8, "GPE"]]}', "overlapping entities"),
    ],
)
def test_jsonl_errors_name_file_and_line(tmp_path: Path, line: str, error: str) -> None:
    path = _write(tmp_path, '{"text": "ok"}\n' + line + "\n", "data.jsonl")
    with pytest.raises(ValueError, match=r"data\.jsonl:2: .*" + error):
        convert(path, tmp_path / "out.spacy")


def test_docbin_passes_through(tmp_path: Path) -> None:
    nlp = spacy.blank("en")
    docs = list(conll_to_docs(_write(tmp_path, IOB), nlp, "iob"))
    DocBin(docs=docs).to_disk(tmp_path / "in.spacy")
    stats = convert(tmp_path / "in.spacy", tmp_path / "out.spacy")
    assert stats["format"] == "spacy" and stats["docs"] == 3 and stats["entities"] == {"LOC": 1, "PER": 2}
    loaded = list(DocBin().from_disk(tmp_path / "out.spacy").get_docs(nlp.vocab))
    assert [_ents(d) for d in loaded] == [_ents(d) for d in docs]
    assert [_sents(d) for d in loaded] == [_sents(d) for d in docs]


def _count_entities_by_transitions(path: Path) -> Counter[str]:
    """Independent entity count: a B- tag, or an I- tag not continuing the previous token's type."""
    counts: Counter[str] = Counter()
    previous = "O"
    for line in path.read_text(encoding="utf-8").splitlines():
        cols = line.split()
        tag = cols[-1] if cols and cols[0] != "-DOCSTART-" else "O"
        if tag.startswith("B-") or (tag.startswith("I-") and previous[2:] != tag[2:]):
            counts[tag[2:]] += 1
        previous = tag
    return counts


def test_real_conll2003_valid(shared_data: Path, tmp_path: Path) -> None:
    path = shared_data / "conll2003" / "valid.txt"
    stats = convert(path, tmp_path / "valid.spacy")
    assert stats == {
        "format": "conll2003",
        "docs": 216,
        "sentences": 3250,
        "tokens": 51362,
        "entities": {"LOC": 1837, "MISC": 922, "ORG": 1341, "PER": 1842},
    }
    lines = path.read_text(encoding="utf-8").splitlines()
    assert stats["docs"] == sum(line.startswith("-DOCSTART-") for line in lines)
    assert stats["entities"] == dict(sorted(_count_entities_by_transitions(path).items()))
    assert sum(stats["entities"].values()) == 5942


@pytest.mark.parametrize(
    ("relpath", "fmt", "sentences"),
    [
        ("conll2003/train.txt", "conll2003", 14041),
        ("wnut17/train.conll", "wnut17", 3394),
        ("wnut17/dev.conll", "wnut17", 1009),
        ("wikiann/en/dev", "wikiann", 10000),
        ("wikiann/de/dev", "wikiann", 10000),
        ("wikiann/fr/dev", "wikiann", 10000),
        ("wikiann/nl/dev", "wikiann", 10000),
    ],
)
def test_real_files_detect_and_read(shared_data: Path, relpath: str, fmt: str, sentences: int) -> None:
    path = shared_data / relpath
    assert detect_format(path) == fmt
    assert sum(len(document) for document in read_conll(path)) == sentences
