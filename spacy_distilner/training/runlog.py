"""Record the wall time and peak memory of a training run, and collect runs into a table.

``distilner runlog run OUT.json -- python -m spacy train ...`` runs the
command (its output streams through), then writes ``OUT.json`` with the wall seconds, the peak
resident memory of the largest child process (``getrusage(RUSAGE_CHILDREN)``), the exit code and
``$SPACY_CONFIG_OVERRIDES`` (which ``spacy train`` applies), and exits with that code.

``distilner runlog table OUT_DIR TRAINING_DIR NAME ...`` reads, per
``NAME``, ``TRAINING_DIR/NAME/model-best`` (``meta.json``: dev scores of the best checkpoint and
the trainable parameter counts; ``config.cfg``: start model and LoRA rank) and
``OUT_DIR/NAME.run.json``, and writes ``OUT_DIR/table.md`` and ``OUT_DIR/table.json``.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

RUN_SUFFIX = ".run.json"


def peak_rss_mb(usage: resource.struct_rusage) -> float:
    """``ru_maxrss`` in MiB (Linux reports KiB, macOS bytes)."""
    return usage.ru_maxrss / (2**20 if sys.platform == "darwin" else 2**10)


def run(command: Sequence[str], out: Path) -> int:
    """Run ``command`` (a leading ``python`` is this interpreter), write its wall time and peak RSS to ``out``."""
    command = [sys.executable, *command[1:]] if command[0] in ("python", "python3") else list(command)
    start = time.perf_counter()
    returncode = subprocess.run(command).returncode
    wall = time.perf_counter() - start
    record = {
        "command": command,
        "returncode": returncode,
        "wall_s": round(wall, 1),
        "peak_rss_mb": round(peak_rss_mb(resource.getrusage(resource.RUSAGE_CHILDREN)), 1),
        "config_overrides": os.environ.get("SPACY_CONFIG_OVERRIDES") or None,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    return returncode


def collect(out_dir: Path, training_dir: Path, name: str) -> dict:
    """One table row: the run's start model, method, dev scores, trainable parameters, time and memory."""
    from spacy.util import load_config

    best = training_dir / name / "model-best"
    meta = json.loads((best / "meta.json").read_text())
    config = load_config(best / "config.cfg", interpolate=True)
    component = config["components"]["distilner"]
    run_record = json.loads((out_dir / f"{name}{RUN_SUFFIX}").read_text())
    perf = meta["performance"]
    params = meta.get("distilner_parameters", {})
    return {
        "run": name,
        "start": str(component["model"]),
        "method": f"LoRA r={component['lora_r']}" if component["lora_r"] else "full",
        "steps": config.get("training", {}).get("max_steps"),
        "dev_p": perf["ents_p"],
        "dev_r": perf["ents_r"],
        "dev_f": perf["ents_f"],
        "dev_per_type": perf.get("ents_per_type"),
        "trainable": params.get("trainable"),
        "total": params.get("total"),
        "wall_s": run_record["wall_s"],
        "peak_rss_mb": run_record["peak_rss_mb"],
        "config_overrides": run_record.get("config_overrides"),
    }


def markdown(rows: Sequence[dict]) -> str:
    """The rows as a markdown table."""
    lines = [
        "| run | start from | method | steps | dev P | dev R | dev F1 | trainable params | wall time | peak RSS |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        trainable = (
            f"{row['trainable']:,} ({row['trainable'] / row['total']:.2%})" if row["trainable"] is not None else "?"
        )
        lines.append(
            f"| {row['run']} | `{row['start']}` | {row['method']} | {row['steps'] or '?'} | {row['dev_p']:.3f} | {row['dev_r']:.3f} | "
            f"**{row['dev_f']:.3f}** | {trainable} | {row['wall_s'] / 60:.1f} min | {row['peak_rss_mb']:,.0f} MB |"
        )
    lines += [f"\n{row['run']}: `{row['config_overrides']}`" for row in rows if row["config_overrides"]]
    return "\n".join(lines) + "\n"


def table(out_dir: Path, training_dir: Path, names: Sequence[str]) -> list[dict]:
    """Write ``table.md`` and ``table.json`` for the runs ``names`` into ``out_dir``; return the rows."""
    rows = [collect(out_dir, training_dir, name) for name in names]
    (out_dir / "table.json").write_text(json.dumps(rows, indent=2) + "\n")
    (out_dir / "table.md").write_text(markdown(rows))
    return rows
