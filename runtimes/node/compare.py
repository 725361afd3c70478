"""Parity of the Node runtime with ``python -m spacy_distilner annotate`` (onnx backend) on the same texts.

    python runtimes/node/compare.py MODEL_DIR [--conll ../shared/data/conll2003/valid.txt] [--out /tmp/node-parity]

MODEL_DIR is an exported model (``python -m spacy_distilner export-onnx MODEL MODEL_DIR --precision fp32``).
Each CoNLL sentence becomes one text, its words joined by single spaces (as ``training.corpus`` builds Docs).
Both CLIs annotate ``OUT/input.jsonl``; a sentence agrees when both give the same entities (start, end,
label). Prints a JSON summary and writes it, with every differing sentence, to ``OUT/summary.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

NODE_DIR = Path(__file__).resolve().parent
CLI = NODE_DIR / "cli.js"


def conll_texts(path: Path, limit: Optional[int] = None) -> list[str]:
    """The sentences of a CoNLL file, each its words joined by single spaces."""
    from spacy_distilner.training.corpus import read_conll

    texts = [" ".join(word for word, _ in sentence) for doc in read_conll(path) for sentence in doc]
    return texts[:limit]


def write_inputs(texts: Iterable[str], path: Path) -> Path:
    """One ``{"text": ...}`` JSON line per text."""
    path.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in texts), encoding="utf8")
    return path


def _read_records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf8").splitlines()]


def _run(command: Sequence[str], inputs: Path, output: Path) -> list[dict[str, Any]]:
    """Run ``command`` with ``inputs`` on stdin and stdout to ``output``; the records it wrote."""
    with open(inputs, "rb") as stdin, open(output, "wb") as stdout:
        done = subprocess.run(command, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} exited with {done.returncode}:\n{done.stderr[-3000:]}")
    return _read_records(output)


def run_python(model: Path, inputs: Path, output: Path, options: Sequence[str] = ()) -> list[dict[str, Any]]:
    """``python -m spacy_distilner annotate - -`` with the onnx fp32 backend; its records."""
    command = [sys.executable, "-m", "spacy_distilner", "annotate", "-", "-", "--model", str(model)]
    return _run([*command, "--backend", "onnx", "--precision", "fp32", *options], inputs, output)


def run_node(model: Path, inputs: Path, output: Path, options: Sequence[str] = ()) -> list[dict[str, Any]]:
    """``node runtimes/node/cli.js`` on the same input; its records."""
    return _run(["node", str(CLI), "--model", str(model), *options], inputs, output)


def spans(record: dict[str, Any]) -> list[tuple[int, int, str]]:
    """The ``(start, end, label)`` of each entity of a record."""
    return [(e["start"], e["end"], e["label"]) for e in record["entities"]]


def _only(record: dict[str, Any], other: dict[str, Any]) -> list[str]:
    """``text/label`` of the entities of ``record`` that ``other`` lacks."""
    theirs = set(spans(other))
    return [f"{e['text']}/{e['label']}" for e in record["entities"] if (e["start"], e["end"], e["label"]) not in theirs]


def compare(python: Sequence[dict[str, Any]], node: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Sentences with identical entities, entity counts, the largest confidence gap of equal entities,
    and the differing sentences."""
    assert len(python) == len(node), (len(python), len(node))
    same, gap, differing = 0, 0.0, []
    for py, js in zip(python, node):
        assert py["text"] == js["text"]
        if spans(py) == spans(js):
            same += 1
            gap = max([gap] + [abs(a["confidence"] - b["confidence"]) for a, b in zip(py["entities"], js["entities"])])
        else:
            differing.append({"text": py["text"], "python_only": _only(py, js), "node_only": _only(js, py)})
    return {
        "texts": len(python),
        "identical": same,
        "identical_share": same / len(python) if python else 1.0,
        "python_entities": sum(len(r["entities"]) for r in python),
        "node_entities": sum(len(r["entities"]) for r in node),
        "max_confidence_gap": gap,
        "differing": differing,
    }


def main(argv: Optional[Sequence[str]] = None) -> None:
    repo = NODE_DIR.parents[1]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="exported model directory (with model.onnx)")
    parser.add_argument("--conll", type=Path, default=repo.parent / "shared" / "data" / "conll2003" / "valid.txt")
    parser.add_argument("--out", type=Path, default=Path("/tmp/node-parity"))
    parser.add_argument("--limit", type=int, default=None, help="first N sentences only")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    inputs = write_inputs(conll_texts(args.conll, args.limit), args.out / "input.jsonl")
    result = compare(
        run_python(args.model, inputs, args.out / "python.jsonl"), run_node(args.model, inputs, args.out / "node.jsonl")
    )
    (args.out / "summary.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf8")
    print(json.dumps({k: v for k, v in result.items() if k != "differing"}, indent=2))
    print(f"{len(result['differing'])} differing sentences in {args.out / 'summary.json'}")


if __name__ == "__main__":
    main()
