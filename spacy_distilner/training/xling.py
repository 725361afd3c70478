"""Zero-shot cross-lingual table: entity F1 on WikiANN dev per language and model (MISC predictions dropped).

    distilner xling ../shared/data/wikiann --models multilingual,default --out metrics/xling

WikiANN has PER/ORG/LOC only, so MISC predictions are ignored; its gold words are given
(``gold_tokens``), as the sentences come tokenized. ``--limit N`` scores the first N sentences.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Sequence

import spacy

from .evaluate import evaluate, read_gold

LANGS = ("en", "de", "fr", "nl")
IGNORED = ("MISC",)


def run(data_dir: Path, models: Sequence[str], langs: Sequence[str] = LANGS, limit: int = 0) -> list[dict]:
    """One row per (model, language): P/R/F, per-type F, sentences and seconds."""
    rows = []
    for model in models:
        for lang in langs:
            nlp = spacy.blank(lang)
            nlp.add_pipe("distilner", config={"model": model})
            golds = read_gold(data_dir / lang / "dev", nlp, "wikiann")
            golds = golds[:limit] if limit else golds
            start = time.perf_counter()
            scores = evaluate(nlp, golds, gold_tokens=True, ignore_labels=IGNORED)
            rows.append(
                {
                    "model": model,
                    "lang": lang,
                    "sentences": len(golds),
                    "ents_p": scores["ents_p"],
                    "ents_r": scores["ents_r"],
                    "ents_f": scores["ents_f"],
                    "per_type_f": {k: v["f"] for k, v in scores["ents_per_type"].items()},
                    "seconds": time.perf_counter() - start,
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    return rows


def table(rows: list[dict]) -> str:
    """Markdown: one row per model, entity F1 per language, and the gain of the first model over each other."""
    langs = list(dict.fromkeys(r["lang"] for r in rows))
    models = list(dict.fromkeys(r["model"] for r in rows))
    f1 = {(r["model"], r["lang"]): r["ents_f"] for r in rows}
    lines = ["| model | " + " | ".join(langs) + " |", "| --- |" + " --- |" * len(langs)]
    for model in models:
        lines.append(f"| {model} | " + " | ".join(f"{f1[(model, lang)]:.3f}" for lang in langs) + " |")
    for other in models[1:]:
        gains = " | ".join(f"{100 * (f1[(models[0], lang)] - f1[(other, lang)]):+.1f}" for lang in langs)
        lines.append(f"| {models[0]} − {other} (F1 points) | {gains} |")
    return "\n".join(lines) + "\n"
