"""Benchmark: words/s, peak memory and F1 of distilner backends against the Hugging Face pipeline.

All variants use the same weights and the same thread count, on whole CoNLL-2003 documents,
each in its own subprocess (so peak RSS is its own). Writes ``bench.json`` and ``bench.png``.

    python -m spacy_distilner.bench --model default --data ../shared/data/conll2003/valid.txt --out metrics/bench
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .batching import PaddingStats

VARIANTS = {
    "hf_pipeline": {},
    "torch_fp32": {"backend": "torch", "precision": "fp32"},
    "torch_bf16": {"backend": "torch", "precision": "bf16"},
    "onnx_fp32": {"backend": "onnx", "precision": "fp32"},
    "onnx_int8": {"backend": "onnx", "precision": "int8"},
    "onnx_fp16": {"backend": "onnx", "precision": "fp16"},
}
LENGTHS = (100, 1000, 10000)


def _gold_docs(data: Path, vocab: Any, limit: int) -> list:
    from .training.corpus import conll_to_docs

    docs = list(conll_to_docs(data, vocab, fmt="auto"))
    return docs[:limit] if limit else docs


def _f1(pred: list[set], gold: list[set]) -> float:
    tp = sum(len(p & g) for p, g in zip(pred, gold))
    n_pred, n_gold = sum(map(len, pred)), sum(map(len, gold))
    return 2 * tp / (n_pred + n_gold) if n_pred + n_gold else 0.0


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_variant(name: str, model: str, data: Path, threads: int, batch_size: int, limit: int) -> dict:
    """Measure one variant in this process."""
    import spacy
    import torch

    torch.set_num_threads(threads)
    nlp = spacy.blank("en")
    config = {"model": model, "num_threads": threads, **VARIANTS.get(name, {})}
    pipe = nlp.add_pipe("distilner", config=config)
    golds = _gold_docs(data, nlp.vocab, limit)
    texts = [g.text for g in golds]
    n_words = sum(len(g) for g in golds)
    truth = [{(e.start_char, e.end_char, e.label_) for e in g.ents} for g in golds]
    nlp("warm up the model once.")
    if name == "hf_pipeline":
        from transformers import pipeline

        hf = pipeline(
            "token-classification",
            model=pipe.hf_model,
            tokenizer=pipe.hf_tokenizer,
            aggregation_strategy="first",
            stride=pipe.stride,
            device="cpu",
        )
        start = time.perf_counter()
        outputs = hf(texts, batch_size=batch_size)
        seconds = time.perf_counter() - start
        pred = [{(int(o["start"]), int(o["end"]), o["entity_group"]) for o in out} for out in outputs]
        extra: dict[str, Any] = {}
    else:
        pipe.padding = PaddingStats()  # count only the measured run, not the warm-up
        start = time.perf_counter()
        docs = list(nlp.pipe(texts, batch_size=batch_size))
        seconds = time.perf_counter() - start
        pred = [{(e.start_char, e.end_char, e.label_) for e in d.ents} for d in docs]
        extra = {"padding": pipe.padding.as_dict(), "scaling": _scaling(nlp, texts)} if name == "torch_fp32" else {}
    return {
        "variant": name,
        "words": n_words,
        "seconds": seconds,
        "words_per_s": n_words / seconds,
        "f1": _f1(pred, truth),
        "peak_rss_mb": _peak_rss_mb(),
        "threads": threads,
        **pipe.backend_info,
        **extra,
    }


def _scaling(nlp: Any, texts: list[str]) -> list[dict]:
    """Words/s for single documents of growing length (CoNLL text concatenated)."""
    words = " ".join(texts).split(" ")
    out = []
    for n in LENGTHS:
        text = " ".join(words[:n])
        start = time.perf_counter()
        nlp(text)
        out.append({"words": n, "words_per_s": n / (time.perf_counter() - start)})
    return out


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in results if "words_per_s" in r]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    a.bar([r["variant"] for r in ok], [r["words_per_s"] for r in ok], color="tab:blue")
    for i, r in enumerate(ok):
        a.text(i, r["words_per_s"], f"F1 {r['f1']:.3f}", ha="center", va="bottom", fontsize=8)
    a.set_ylabel("words / s")
    a.set_title(f"CoNLL-2003 valid documents, {ok[0]['threads']} threads")
    a.tick_params(axis="x", rotation=30)
    scaling = next((r["scaling"] for r in ok if "scaling" in r), [])
    if scaling:
        b.plot([s["words"] for s in scaling], [s["words_per_s"] for s in scaling], marker="o")
        b.set_xscale("log")
        b.set_xlabel("document length (words)")
        b.set_ylabel("words / s")
        b.set_title("torch fp32: one document of growing length")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--data", type=Path, default=Path("../shared/data/conll2003/valid.txt"))
    parser.add_argument("--out", type=Path, default=Path("metrics/bench"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--limit", type=int, default=0, help="only the first N documents (0: all)")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # run one variant, print JSON
    args = parser.parse_args()
    if args.one:
        result = run_variant(args.one, args.model, args.data, args.threads, args.batch_size, args.limit)
        print(json.dumps(result))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    for name in args.variants.split(","):
        cmd = [sys.executable, "-m", "spacy_distilner.bench", "--one", name, "--model", args.model,
               "--data", str(args.data), "--threads", str(args.threads),
               "--batch-size", str(args.batch_size), "--limit", str(args.limit)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode == 0:
            results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        else:
            results.append({"variant": name, "error": proc.stderr.strip().splitlines()[-1:]})
        print(json.dumps(results[-1]), flush=True)
    base = next((r["words_per_s"] for r in results if r["variant"] == "hf_pipeline" and "words_per_s" in r), None)
    for r in results:
        if base and "words_per_s" in r:
            r["speedup_vs_hf"] = r["words_per_s"] / base
    (args.out / "bench.json").write_text(json.dumps(results, indent=2))
    plot(results, args.out / "bench.png")


if __name__ == "__main__":
    main()
