"""The cross-lingual table runs on WikiANN-format files and drops MISC predictions."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from spacy_distilner.cli import app

WIKIANN = "de:Anton\tB-PER\nde:Wilhelm\tI-PER\nde:in\tO\nde:Berlin\tB-LOC\n\nde:Die\tO\nde:Firma\tO\nde:Siemens\tB-ORG\n"


def test_xling_table(iob_dir: Path, bilou_dir: Path, tmp_path: Path) -> None:
    """``distilner xling DATA_DIR --models A,B --langs en,de --out OUT``."""
    for lang in ("en", "de"):
        (tmp_path / lang).mkdir()
        (tmp_path / lang / "dev").write_text(WIKIANN.replace("de:", f"{lang}:"), encoding="utf8")
    out = tmp_path / "out"
    args = ["xling", str(tmp_path), "--models", f"{iob_dir},{bilou_dir}", "--langs", "en,de", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = json.loads((out / "xling.json").read_text())
    assert [(r["lang"], r["sentences"]) for r in rows] == [("en", 2), ("de", 2)] * 2
    assert all("MISC" not in r["per_type_f"] for r in rows)
    assert all(0.0 <= r["ents_f"] <= 1.0 for r in rows)
    lines = (out / "xling.md").read_text().splitlines()
    assert lines[0] == "| model | en | de |" and len(lines) == 5
    assert lines[-1].startswith(f"| {iob_dir} − {bilou_dir} (F1 points) | ")
