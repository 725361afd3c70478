"""The cross-lingual table runs on WikiANN-format files and drops MISC predictions."""

from __future__ import annotations

from pathlib import Path

from spacy_distilner.training import xling

WIKIANN = "de:Anton\tB-PER\nde:Wilhelm\tI-PER\nde:in\tO\nde:Berlin\tB-LOC\n\nde:Die\tO\nde:Firma\tO\nde:Siemens\tB-ORG\n"


def test_xling_table(iob_dir: Path, bilou_dir: Path, tmp_path: Path) -> None:
    for lang in ("en", "de"):
        (tmp_path / lang).mkdir()
        (tmp_path / lang / "dev").write_text(WIKIANN.replace("de:", f"{lang}:"), encoding="utf8")
    rows = xling.run(tmp_path, [str(iob_dir), str(bilou_dir)], ("en", "de"))
    assert [(r["lang"], r["sentences"]) for r in rows] == [("en", 2), ("de", 2)] * 2
    assert all("MISC" not in r["per_type_f"] for r in rows)
    assert all(0.0 <= r["ents_f"] <= 1.0 for r in rows)
    lines = xling.table(rows).splitlines()
    assert lines[0] == "| model | en | de |" and len(lines) == 5
    assert lines[-1].startswith(f"| {iob_dir} − {bilou_dir} (F1 points) | ")
