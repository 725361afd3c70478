"""Temperature scaling of entity confidence, fitted on a dev set, with ECE and a reliability diagram.

``span._.confidence`` is the mean probability of its tokens' predicted tags under
``softmax(logits / T)``. Predicted entities do not depend on ``T`` (tags are decoded
from the logits at ``T = 1``); their confidences do. We pick the ``T`` that minimises the log-loss of
"this predicted entity is exactly right" on the dev set, and report the expected
calibration error (10 equal-width bins) before and after.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import spacy
from spacy.tokens import Doc, DocBin

from ..align import softmax, token_bounds
from ..casing import Casing, recase
from ..component import find_component
from ..decode import TagSet, scored_spans, tag_path
from .augment import recased_doc


@dataclass
class EntityOutcomes:
    """Confidences of predicted entities and whether each matches a gold entity exactly."""

    confidence: np.ndarray
    correct: np.ndarray


def outcomes(
    logits: list[np.ndarray], paths: list[np.ndarray], docs: list[Doc], golds: list[Doc], tagset: TagSet,
    temperature: float,
) -> EntityOutcomes:
    """Entity confidences at ``temperature`` from token logits of ``docs``, judged against ``golds``.

    ``paths``: each Doc's decoded tag ids (``decode.tag_path``), which do not depend on ``temperature``.
    """
    conf, correct = [], []
    for token_logits, tag_ids, doc, gold in zip(logits, paths, docs, golds):
        probs = softmax(token_logits / temperature)
        truth = {(e.start_char, e.end_char, e.label_) for e in gold.ents}
        skip = token_bounds(doc)[2]
        for start, end, label, confidence in scored_spans(probs, tag_ids, tagset, skip):
            conf.append(confidence)
            correct.append((doc[start:end].start_char, doc[start:end].end_char, label) in truth)
    return EntityOutcomes(np.array(conf), np.array(correct, dtype=float))


def ece(o: EntityOutcomes, n_bins: int = 10) -> float:
    """Expected calibration error with equal-width bins."""
    bins = np.minimum((o.confidence * n_bins).astype(int), n_bins - 1)
    total = 0.0
    for b in range(n_bins):
        mask = bins == b
        if mask.any():
            total += mask.sum() * abs(o.correct[mask].mean() - o.confidence[mask].mean())
    return total / max(len(o.confidence), 1)


def log_loss(o: EntityOutcomes) -> float:
    p = np.clip(o.confidence, 1e-6, 1 - 1e-6)
    return float(-(o.correct * np.log(p) + (1 - o.correct) * np.log(1 - p)).mean())


def reliability_plot(before: EntityOutcomes, after: EntityOutcomes, temperature: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    edges = np.linspace(0, 1, 11)
    for o, name in ((before, "T=1"), (after, f"T={temperature:.2f}")):
        bins = np.minimum((o.confidence * 10).astype(int), 9)
        xs = [o.confidence[bins == b].mean() for b in range(10) if (bins == b).any()]
        ys = [o.correct[bins == b].mean() for b in range(10) if (bins == b).any()]
        ax.plot(xs, ys, marker="o", label=f"{name} (ECE {ece(o):.3f})")
    ax.plot(edges, edges, "k--", linewidth=0.8, label="perfect")
    ax.set_xlabel("entity confidence")
    ax.set_ylabel("share of entities exactly right")
    ax.set_title("Reliability of span._.confidence (dev)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _concat(parts: list[EntityOutcomes]) -> EntityOutcomes:
    return EntityOutcomes(np.concatenate([p.confidence for p in parts]), np.concatenate([p.correct for p in parts]))


def calibrate(
    pipeline_dir: Path, dev_path: Path, output_dir: Path, metrics_dir: Path, casings: Sequence[Casing] = ("as-given",)
) -> dict:
    """Fit the temperature on ``dev_path`` read in each of ``casings`` (pooled), save the calibrated
    pipeline and metrics (JSON + PNG; ECE before and after per casing)."""
    nlp = spacy.load(pipeline_dir)
    pipe = find_component(nlp)
    pipe.temperature = 1.0
    dev = list(DocBin().from_disk(dev_path).get_docs(nlp.vocab))
    runs = {}
    for casing in casings:
        golds = [recased_doc(g, recase(g.text, casing)) for g in dev] if casing != "as-given" else dev
        docs = list(nlp.pipe(g.text for g in golds))
        logits = [doc._.ner_logits for doc in docs]
        paths = [
            tag_path(token_logits, pipe.tagset, pipe.settings.decoding, token_bounds(doc)[2])
            for token_logits, doc in zip(logits, docs)
        ]
        runs[casing] = (logits, paths, docs, golds)

    def pooled(t: float) -> dict[str, EntityOutcomes]:
        return {casing: outcomes(*run, pipe.tagset, t) for casing, run in runs.items()}

    grid = np.round(np.arange(0.5, 4.01, 0.05), 2)
    losses = [log_loss(_concat(list(pooled(t).values()))) for t in grid]
    best = float(grid[int(np.argmin(losses))])
    before, after = pooled(1.0), pooled(best)
    pipe.temperature = best
    nlp.to_disk(output_dir)
    metrics_dir.mkdir(parents=True, exist_ok=True)
    all_before, all_after = _concat(list(before.values())), _concat(list(after.values()))
    result = {
        "temperature": best,
        "casings": list(casings),
        "entities": int(len(all_before.confidence)),
        "ece_before": ece(all_before),
        "ece_after": ece(all_after),
        "log_loss_before": log_loss(all_before),
        "log_loss_after": log_loss(all_after),
        "accuracy": float(all_before.correct.mean()) if len(all_before.correct) else 0.0,
        "per_casing": {
            c: {"entities": int(len(before[c].confidence)), "ece_before": ece(before[c]), "ece_after": ece(after[c])}
            for c in casings
        },
    }
    (metrics_dir / "calibration.json").write_text(json.dumps(result, indent=2))
    reliability_plot(all_before, all_after, best, metrics_dir / "reliability.png")
    return result
