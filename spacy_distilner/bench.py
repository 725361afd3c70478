"""Benchmark: words/s, peak memory and F1 of distilner backends against the Hugging Face pipeline.

All variants use the same weights and the same thread count, on whole CoNLL-2003 documents,
each in its own subprocess; peak RSS is measured over the timed run (after loading, any ONNX
export and a warm-up, whose peak is reported apart). The Hugging Face baseline is timed at
several batch sizes and its best is kept. With ``--rounds N`` every variant runs N times,
round-robin (so drift on a shared machine hits all alike), and words/s is the median. Streaming
runs (torch bf16 and fp32 by default) send ``--stream`` texts of varied length (the CoNLL sentences,
cycled) through ``nlp.pipe`` and sample the resident memory every 2,000.
Two baselines: the Hugging Face pipeline in fp32 and with its model in bf16; ``default`` is the
component as configured by default (``precision="auto"`` on this machine). Each record names the
CPU (flags, native bf16, int8 kernel family) and the cold start (``add_pipe`` to the first Doc).
Writes ``bench.json`` and ``bench.png``.

    distilner bench --model default --data ../shared/data/conll2003/valid.txt --out metrics/bench
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from .batching import PaddingStats

VARIANTS = {
    "hf_pipeline": {"precision": "fp32"},  # transformers.pipeline on the same weights, fp32
    "hf_pipeline_bf16": {"precision": "fp32"},  # the same with the model cast to bf16 (a user who asks for it)
    "default": {},  # the component as configured by default: precision "auto" for this machine
    "torch_fp32": {"backend": "torch", "precision": "fp32"},
    "torch_bf16": {"backend": "torch", "precision": "bf16"},
    "onnx_fp32": {"backend": "onnx", "precision": "fp32"},
    "onnx_int8": {"backend": "onnx", "precision": "int8"},
    "onnx_fp16": {"backend": "onnx", "precision": "fp16"},
    "tensorflow": {"backend": "tensorflow", "precision": "fp32"},
}
LENGTHS = (100, 1000, 10000)
HF_BATCH_SIZES = (1, 8, 32)
STREAM_EVERY = 2_000  # documents between two memory samples of a stream run


def variant_config(name: str) -> dict:
    """Component config of ``VARIANT`` or ``VARIANT:MAX_LENGTH:OVERLAP`` (another inference window)."""
    base, *window = name.split(":")
    if base not in VARIANTS or len(window) not in (0, 2):
        raise ValueError(f"unknown variant {name!r}: one of {', '.join(VARIANTS)}, optionally :MAX_LENGTH:OVERLAP")
    config = dict(VARIANTS[base])
    if window:
        config.update(max_length=int(window[0]), stride=int(window[1]))
    return config


def _gold_docs(data: Path, vocab: Any, limit: int) -> list:
    from .training.corpus import conll_to_docs

    docs = list(conll_to_docs(data, vocab, fmt="auto"))
    return docs[:limit] if limit else docs


def _f1(pred: list[set], gold: list[set]) -> float:
    tp = sum(len(p & g) for p, g in zip(pred, gold))
    n_pred, n_gold = sum(map(len, pred)), sum(map(len, gold))
    return 2 * tp / (n_pred + n_gold) if n_pred + n_gold else 0.0


def _peak_rss_mb() -> float:
    """Peak resident memory since the last :func:`_reset_peak` (Linux ``VmHWM``), else since start."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reset_peak() -> float:
    """Start a new peak-memory window (Linux ``clear_refs``); returns the peak so far (loading, export)."""
    peak = _peak_rss_mb()
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    return peak


def _rss_mb() -> float:
    """Current resident memory (Linux ``/proc``)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 2**20


def run_variant(
    name: str, model: str, data: Path, threads: int, batch_size: int, limit: int, hf_batch_sizes: tuple = HF_BATCH_SIZES
) -> dict:
    """Measure one variant in this process."""
    import spacy
    import torch

    torch.set_num_threads(threads)
    nlp = spacy.blank("en")
    config = {"model": model, "num_threads": threads, **variant_config(name)}
    start = time.perf_counter()
    pipe = nlp.add_pipe("distilner", config=config)
    nlp("warm up the model once.")
    cold_start = time.perf_counter() - start  # add_pipe to the first Doc (an ONNX variant may export first)
    golds = _gold_docs(data, nlp.vocab, limit)
    texts = [g.text for g in golds]
    n_words = sum(len(g) for g in golds)
    truth = [{(e.start_char, e.end_char, e.label_) for e in g.ents} for g in golds]
    load_peak = _reset_peak()
    if name.startswith("hf_pipeline"):
        from transformers import pipeline

        hf_model = pipe.hf_model.to(torch.bfloat16) if name == "hf_pipeline_bf16" else pipe.hf_model
        hf = pipeline(
            "token-classification",
            model=hf_model,
            tokenizer=pipe.hf_tokenizer,
            aggregation_strategy="first",
            stride=pipe.stride,
            device="cpu",
        )
        by_batch = {}
        for size in hf_batch_sizes:  # the baseline gets its best batch size
            start = time.perf_counter()
            outputs = hf(texts, batch_size=size)
            by_batch[size] = time.perf_counter() - start
        best = min(by_batch, key=by_batch.get)
        seconds = by_batch[best]
        pred = [{(int(o["start"]), int(o["end"]), o["entity_group"]) for o in out} for out in outputs]
        extra: dict[str, Any] = {"batch_size": best, "seconds_by_batch_size": by_batch,
                                 "max_length": hf.tokenizer.model_max_length}  # the pipeline's own window
    else:
        pipe.engine.padding = PaddingStats()  # count only the measured run, not the warm-up
        start = time.perf_counter()
        docs = list(nlp.pipe(texts, batch_size=batch_size))
        seconds = time.perf_counter() - start
        pred = [{(e.start_char, e.end_char, e.label_) for e in d.ents} for d in docs]
        # everything but the forward pass (spaCy's tokenizer, pieces, windows, batching, alignment,
        # decoding, attributes), relative to the forward pass
        forward = pipe.padding.forward_seconds
        extra = {"padding": pipe.padding.as_dict(), "overhead_vs_forward": seconds / forward - 1 if forward else None}
        if name == "torch_fp32":
            extra["scaling"] = _scaling(nlp, texts)
    return {
        "variant": name,
        "words": n_words,
        "seconds": seconds,
        "words_per_s": n_words / seconds,
        "f1": _f1(pred, truth),
        "peak_rss_mb": _peak_rss_mb(),
        "load_peak_rss_mb": load_peak,
        "cold_start_s": cold_start,
        "threads": threads,
        "max_length": pipe.max_length,
        "stride": pipe.stride,
        **pipe.backend_info,
        **extra,
    }


def run_stream(name: str, model: str, data: Path, threads: int, batch_size: int, n_docs: int) -> dict:
    """Stream ``n_docs`` texts of varied length (the data's sentences, cycled) through ``nlp.pipe``, sampling
    the resident memory every ``STREAM_EVERY`` (a tenth of a shorter run); ``rss_growth_after_first_mb``: the
    highest sample after the first, less the first."""
    import itertools

    import spacy
    import torch

    torch.set_num_threads(threads)
    nlp = spacy.blank("en")
    nlp.add_pipe("distilner", config={"model": model, "num_threads": threads, **variant_config(name)})
    sentences = [sent.text for doc in _gold_docs(data, nlp.vocab, 0) for sent in doc.sents]
    texts = itertools.islice(itertools.cycle(sentences), n_docs)
    every = min(STREAM_EVERY, max(1, n_docs // 10))
    samples, n_words, start = [], 0, time.perf_counter()
    for i, doc in enumerate(nlp.pipe(texts, batch_size=batch_size), 1):
        n_words += len(doc)
        if i % every == 0 or i == n_docs:
            samples.append({"docs": i, "rss_mb": _rss_mb()})
    seconds = time.perf_counter() - start
    return {
        "variant": name,
        "docs": n_docs,
        "words": n_words,
        "words_per_s": n_words / seconds,
        "rss_samples": samples,
        "rss_growth_after_first_mb": max(s["rss_mb"] for s in samples) - samples[0]["rss_mb"],
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

    ok = [r for r in results if "words_per_s" in r and "rss_samples" not in r]
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(16, 4))
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
        b.set_ylim(bottom=0)
        b.set_xlabel("document length (words)")
        b.set_ylabel("words / s")
        b.set_title("torch fp32: one document of growing length")
    streams = [r for r in results if "rss_samples" in r]
    for stream in streams:
        samples = stream["rss_samples"]
        c.plot([x["docs"] for x in samples], [x["rss_mb"] for x in samples], marker=".", label=stream["variant"])
    if streams:
        c.set_ylim(bottom=0)
        c.set_xlabel("texts streamed through nlp.pipe")
        c.set_ylabel("resident memory (MB)")
        c.set_title("memory while streaming texts of varied length")
        c.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _run_one(name: str, options: list[str]) -> dict:
    """One variant in a fresh subprocess (``distilner bench --one NAME``); its JSON result, or its error."""
    cmd = [sys.executable, "-m", "spacy_distilner", "bench", "--one", name, *options]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode == 0:
        result = json.loads(proc.stdout.strip().splitlines()[-1])
    else:
        result = {"variant": name, "error": proc.stderr.strip().splitlines()[-1:]}
    print(json.dumps(result), flush=True)
    return result


def _median_of(runs: list[dict]) -> dict:
    """The first run's record, with the median speed over all runs (and each run's words/s), and the
    lowest peak RSS (a first ONNX run also holds what its one-time export left allocated)."""
    if any("error" in r for r in runs):
        return next(r for r in runs if "error" in r)
    seconds = statistics.median(r["seconds"] for r in runs)
    return {**runs[0], "seconds": seconds, "words_per_s": runs[0]["words"] / seconds,
            "words_per_s_runs": [r["words_per_s"] for r in runs],
            "peak_rss_mb": min(r["peak_rss_mb"] for r in runs), "peak_rss_mb_runs": [r["peak_rss_mb"] for r in runs]}


def run(
    model: str,
    data: Path,
    out: Path,
    threads: int,
    batch_size: int,
    limit: int = 0,
    variants: Sequence[str] = tuple(VARIANTS),
    stream: int = 0,
    stream_variants: Sequence[str] = ("torch_bf16", "torch_fp32"),
    rounds: int = 1,
) -> list[dict]:
    """Time every variant ``rounds`` times (round-robin, each in its own subprocess), then the stream runs;
    write ``out/bench.json`` and ``out/bench.png`` and return the records."""
    out.mkdir(parents=True, exist_ok=True)
    common = ["--model", model, "--data", str(data), "--threads", str(threads), "--batch-size", str(batch_size)]
    runs: dict[str, list[dict]] = {name: [] for name in variants}
    for round_ in range(rounds):
        for name in variants:
            extra = ["--limit", str(limit)]
            if round_ and "batch_size" in runs[name][0]:  # later rounds time the baseline's best batch size only
                extra += ["--hf-batch-sizes", str(runs[name][0]["batch_size"])]
            runs[name].append(_run_one(name, common + extra))
    results = [_median_of(runs[name]) for name in variants]
    if stream:
        results += [_run_one(name, [*common, "--one-stream", "--stream", str(stream)]) for name in stream_variants]
    for baseline, key in (("hf_pipeline", "speedup_vs_hf"), ("hf_pipeline_bf16", "speedup_vs_hf_bf16")):
        base = next((r["words_per_s"] for r in results if r["variant"] == baseline and "words_per_s" in r), None)
        for r in results:
            if base and "words_per_s" in r and "rss_samples" not in r:
                r[key] = r["words_per_s"] / base
    (out / "bench.json").write_text(json.dumps(results, indent=2))
    plot(results, out / "bench.png")
    return results
