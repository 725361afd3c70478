"""One command line: every tool is a ``distilner`` subcommand, and every help page is plain text."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import spacy
import typer
from safetensors import safe_open
from typer.testing import CliRunner

from spacy_distilner.cli import app
from spacy_distilner.loading import KNOWN_MODELS

pytestmark = pytest.mark.usefixtures("decision")  # every test under the fp32 and the bf16 decision

SUBCOMMANDS = {
    "annotate": None,
    "render": None,
    "evaluate": None,
    "compare": None,
    "serve": None,
    "ray-annotate": None,
    "export-onnx": None,
    "info": None,
    "bench": None,
    "calibrate": None,
    "ship": None,
    "checkpoints": {"average"},
    "xling": None,
    "corpus": None,
    "convert": {"quire", "minilm", "e5"},
    "runlog": {"run", "table"},
}


def _help_pages(command: Any, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], str]:
    """``distilner PATH --help`` of the command at ``path`` and of every command below it."""
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, (path, result.output)
    pages = {path: result.stdout}
    for name, sub in getattr(command, "commands", {}).items():
        pages.update(_help_pages(sub, (*path, name)))
    return pages


def test_every_tool_is_a_subcommand() -> None:
    """``python -m spacy_distilner --help`` lists each tool; the groups list theirs."""
    out = subprocess.run(
        [sys.executable, "-m", "spacy_distilner", "--help"], capture_output=True, text=True, check=True
    ).stdout
    listed = set(re.findall(r"^  (\S+)\s", out.split("Commands:")[1], re.MULTILINE))
    assert listed == set(SUBCOMMANDS), out
    root = typer.main.get_command(app)
    for name, subs in SUBCOMMANDS.items():
        assert set(getattr(root.commands[name], "commands", {}) or ()) == (subs or set()), name


def test_help_pages_are_plain_text() -> None:
    """No type after a flag (typer's rich help prints ``--help <bool>``), no RST double backticks, and a
    summary of each command that click does not cut."""
    pages = _help_pages(typer.main.get_command(app))
    assert len(pages) == 1 + len(SUBCOMMANDS) + sum(len(subs or ()) for subs in SUBCOMMANDS.values())
    for path, page in pages.items():
        assert "``" not in page and "<bool>" not in page, (path, page)
    for line in pages[()].split("Commands:")[1].splitlines():
        assert not line.endswith("..."), line  # the summary fits; click cuts longer ones


def test_bench_keeps_its_subprocess_options_hidden() -> None:
    assert "--one" not in CliRunner().invoke(app, ["bench", "--help"]).stdout
    result = CliRunner().invoke(app, ["bench", "--variants", "torch_fp32,tensorrt"])
    assert result.exit_code == 2 and "unknown variant 'tensorrt'" in result.stderr


def test_ship_writes_fp16_weights_settings_and_card(
    iob_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``distilner ship PIPELINE --name NAME --card CARD --languages ''`` into a stand-in for the package's models."""
    nlp = spacy.blank("en")
    nlp.add_pipe("distilner", config={"model": str(iob_dir), "precision": "fp32"})
    nlp.to_disk(tmp_path / "pipeline")
    (tmp_path / "card.md").write_text("# card\n", encoding="utf8")
    target = tmp_path / "shipped"
    monkeypatch.setitem(KNOWN_MODELS, "xx_conll03", target)
    args = ["ship", str(tmp_path / "pipeline"), "--name", "xx_conll03", "--card", str(tmp_path / "card.md")]
    result = CliRunner().invoke(app, [*args, "--languages", ""])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(target)
    assert (target / "MODEL_CARD.md").read_text(encoding="utf8") == "# card\n"
    assert json.loads((target / "distilner.json").read_text())["languages"] is None  # '': any language
    weights = sorted(target.glob("*.safetensors"))
    with safe_open(str(weights[0]), "pt") as f:
        assert {str(f.get_tensor(k).dtype) for k in f.keys()} == {"torch.float16"}
    shipped = spacy.blank("de")
    shipped.add_pipe("distilner", config={"model": str(target)})
    assert shipped("Anna wohnt in Berlin.").has_annotation("ENT_IOB")
    assert CliRunner().invoke(app, ["ship", str(tmp_path / "pipeline"), "--name", "tiny"]).exit_code == 2
