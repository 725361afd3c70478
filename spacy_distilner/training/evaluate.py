"""Evaluate a distilner pipeline on gold data: P/R/F per type (spaCy's Scorer) and a confusion table.

The confusion table counts tokens by (gold entity type, predicted entity type), ``O`` for
tokens outside entities, so it shows both type confusions and missed/spurious tokens.
Gold data can be in any format ``training.corpus`` reads (DocBin, JSONL, CoNLL-style).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Iterable, Optional, Sequence

from spacy.language import Language
from spacy.scorer import get_ner_prf
from spacy.tokens import Doc
from spacy.training import Example

from ..casing import Casing, is_all_caps, recase
from .augment import recased_doc
from .corpus import read_docs
from .units import sentence_docs, sentences


def read_gold(path: Path, nlp: Language, fmt: str = "auto") -> list[Doc]:
    """Gold Docs from a DocBin, a JSONL file with character offsets or a CoNLL-style file."""
    return list(read_docs(path, nlp, fmt)[1])


def confusion(examples: Iterable[Example]) -> dict[str, dict[str, int]]:
    """Token counts by gold type (rows) and predicted type (columns), aligned by character offsets."""
    counts: Counter = Counter()
    for eg in examples:
        pred_type = {}
        for ent in eg.predicted.ents:
            for i in range(ent.start_char, ent.end_char):
                pred_type[i] = ent.label_
        for token in eg.reference:
            gold = token.ent_type_ or "O"
            pred = pred_type.get(token.idx, "O")
            if not token.is_space:
                counts[(gold, pred)] += 1
    labels = sorted({g for g, _ in counts} | {p for _, p in counts})
    return {g: {p: counts[(g, p)] for p in labels} for g in labels}


def sentence_examples(example: Example, spans: Sequence[tuple[int, int]]) -> list[Example]:
    """Examples of the gold token ranges ``spans`` of ``example``, the prediction cut at the same
    characters (a predicted token that crosses a sentence edge is kept whole)."""
    out = []
    for start, end in spans:
        gold = example.reference[start:end]
        pred = example.predicted.char_span(gold.start_char, gold.end_char, alignment_mode="expand")
        if pred is not None and pred.text == gold.text:
            out.append(Example(pred.as_doc(), gold.as_doc()))
    return out


def evaluate(
    nlp: Language,
    golds: list[Doc],
    batch_size: int = 32,
    gold_tokens: bool = False,
    ignore_labels: Sequence[str] = (),
    per_sentence: bool = False,
    casing: Casing = "as-given",
) -> dict:
    """Scores (ents_p/r/f, per type), confusion table and words/s of ``nlp`` on ``golds``.

    The pipeline tokenizes the raw text, unless ``gold_tokens`` (the CoNLL convention:
    the gold words are given, as in the shared task's evaluation). Predicted entities with
    a label in ``ignore_labels`` are dropped before scoring (e.g. MISC on WikiANN, which has none).
    With ``per_sentence`` every gold sentence is tagged on its own, without its document around it.
    ``casing`` recases every gold text first (``casing.recase``: offsets and labels unchanged).
    ``all_caps`` scores only the sentences that are ALL CAPS as given (headlines, datelines).
    """
    if per_sentence:
        golds = [sent for gold in golds for sent in sentence_docs(gold)]
    caps = [[(s.start, s.end) for s in sentences(g) if is_all_caps(s.text)] for g in golds]
    golds = [recased_doc(g, recase(g.text, casing)) for g in golds] if casing != "as-given" else golds
    inputs = (Doc(nlp.vocab, words=[t.text for t in g], spaces=[bool(t.whitespace_) for t in g]) for g in golds)
    start = time.perf_counter()
    docs = list(nlp.pipe(inputs if gold_tokens else (g.text for g in golds), batch_size=batch_size))
    seconds = time.perf_counter() - start
    if ignore_labels:
        for doc in docs:
            doc.ents = [e for e in doc.ents if e.label_ not in ignore_labels]
    examples = [Example(doc, gold) for doc, gold in zip(docs, golds)]
    scores = get_ner_prf(examples)
    caps_examples = [eg for eg, spans in zip(examples, caps) for eg in sentence_examples(eg, spans)]
    caps_scores = get_ner_prf(caps_examples)
    return {
        "ents_p": scores["ents_p"],
        "ents_r": scores["ents_r"],
        "ents_f": scores["ents_f"],
        "ents_per_type": scores["ents_per_type"],
        "confusion": confusion(examples),
        "docs": len(golds),
        "tokenization": "gold" if gold_tokens else "pipeline",
        "context": "sentence" if per_sentence else "document",
        "ignored_labels": list(ignore_labels),
        "casing": casing,
        "all_caps": {
            "sentences": len(caps_examples),
            **{k: caps_scores[k] for k in ("ents_p", "ents_r", "ents_f", "ents_per_type")},
        },
        "words_per_s": sum(len(d) for d in docs) / seconds if seconds else None,
    }


def agreement(a: Language, b: Language, texts: Sequence[str], batch_size: int = 32) -> dict:
    """How often pipelines ``a`` and ``b`` give identical entities (spans and labels) on ``texts``,
    and how far apart their per-token probabilities and entity confidences are."""
    same, n_a, n_b, prob_diff, conf_diff = 0, 0, 0, 0.0, 0.0
    for x, y in zip(a.pipe(texts, batch_size=batch_size), b.pipe(texts, batch_size=batch_size)):
        ents_x, ents_y = ([(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in (x, y))
        same += ents_x == ents_y
        n_a, n_b = n_a + len(ents_x), n_b + len(ents_y)
        if len(x) and x._.ner_probs is not None and y._.ner_probs is not None:
            prob_diff = max(prob_diff, float(abs(x._.ner_probs - y._.ner_probs).max()))
        if ents_x == ents_y:
            conf_diff = max([conf_diff] + [abs(e._.confidence - f._.confidence) for e, f in zip(x.ents, y.ents)])
    return {
        "texts": len(texts), "identical": same, "identical_rate": same / len(texts) if texts else None,
        "entities_a": n_a, "entities_b": n_b, "max_prob_diff": prob_diff, "max_confidence_diff": conf_diff,
    }


def format_table(result: dict) -> str:
    """Per-type P/R/F and the confusion table as text."""
    lines = [f"{'type':<16}{'P':>8}{'R':>8}{'F':>8}"]
    for label, s in sorted(result["ents_per_type"].items()):
        lines.append(f"{label:<16}{s['p']:>8.4f}{s['r']:>8.4f}{s['f']:>8.4f}")
    lines.append(f"{'ALL':<16}{result['ents_p']:>8.4f}{result['ents_r']:>8.4f}{result['ents_f']:>8.4f}")
    caps = result["all_caps"]
    if caps["sentences"]:
        lines.append(f"{'ALL-CAPS sents':<16}{caps['ents_p']:>8.4f}{caps['ents_r']:>8.4f}{caps['ents_f']:>8.4f}  ({caps['sentences']} sentences)")
    labels = list(result["confusion"])
    lines += ["", "confusion (tokens; rows gold, columns predicted)", " " * 16 + "".join(f"{p:>10}" for p in labels)]
    for g in labels:
        lines.append(f"{g:<16}" + "".join(f"{result['confusion'][g][p]:>10}" for p in labels))
    return "\n".join(lines)


def write(result: dict, output: Optional[Path]) -> None:
    """Print the tables; save JSON when ``output`` is given."""
    print(format_table(result))
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(result, indent=2))
