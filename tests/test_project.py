"""project.yml: it loads with spaCy's project loader (weasel), its commands declare their files,
the custom workflow converts JSONL and IOB data, and the run log records time, memory and a table."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import pytest
import spacy
import typer
from spacy.tokens import DocBin
from typer.testing import CliRunner
from weasel.cli.run import project_run
from weasel.util import load_project_config

from spacy_distilner.cli import app
from spacy_distilner.training.runlog import run

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW_COMMANDS = {
    "all": ["train", "train-continue", "calibrate", "evaluate", "export-onnx", "quantize", "bench", "package"],
    "wnut": ["wnut-full-shipped", "wnut-lora-shipped", "wnut-full-bare", "wnut-lora-bare", "wnut-table"],
    "custom": ["custom-corpus", "custom-train", "custom-evaluate", "custom-export", "custom-package"],
}


@pytest.fixture(scope="module")
def project() -> dict:
    return load_project_config(ROOT)


def test_commands_declare_their_files(project: dict) -> None:
    commands = {c["name"]: c for c in project["commands"]}
    assert "train-lora" in commands
    for name, command in commands.items():
        assert command["script"], name
        for key in ("deps", "outputs"):
            entries = command.get(key, [])
            assert isinstance(entries, list), (name, key)
            # one path each: weasel reads two ${vars...} entries in a row as one "a, b" string
            assert all(isinstance(e, str) and e and ", " not in e and "${" not in e for e in entries), (name, entries)
        assert command.get("outputs"), f"{name} has no outputs, so it would never be skipped"
        for dep in command.get("deps", []):
            if dep.startswith("configs/"):
                assert (ROOT / dep).is_file(), dep
    for workflow, steps in WORKFLOW_COMMANDS.items():
        assert set(steps) <= set(project["workflows"][workflow])
    assert all(step in commands for steps in project["workflows"].values() for step in steps)


def test_workflows_chain_their_files(project: dict) -> None:
    """Each training/ or metrics/ file a workflow step needs is made by an earlier step of that workflow."""
    commands = {c["name"]: c for c in project["commands"]}
    for workflow in ("all", "improve", "wnut", "custom"):
        made: set[str] = set()
        for step in project["workflows"][workflow]:
            for dep in commands[step].get("deps", []):
                if dep.startswith(("training/", "metrics/")):
                    assert dep in made, (workflow, step, dep)
            made.update(commands[step]["outputs"])


def test_scripts_call_the_one_cli(project: dict) -> None:
    """The package's tools run as ``python -m spacy_distilner SUBCOMMAND``, never as modules of their own."""
    subcommands = set(typer.main.get_command(app).commands)
    called = set()
    for command in project["commands"]:
        for line in command["script"]:
            words = shlex.split(line)
            for i, word in enumerate(words[:-2]):
                if word == "-m" and words[i + 1].startswith("spacy_distilner"):
                    assert words[i + 1] == "spacy_distilner" and words[i + 2] in subcommands, line
                    called.add(words[i + 2])
    assert {"convert", "corpus", "checkpoints", "calibrate", "ship", "bench", "runlog", "export-onnx"} <= called


def test_vars_reach_the_custom_commands(tmp_path: Path) -> None:
    overrides = {"vars.custom_train": str(tmp_path / "t.conll"), "vars.custom_config": "wnut_lora"}
    commands = {c["name"]: c for c in load_project_config(ROOT, overrides=overrides)["commands"]}
    assert str(tmp_path / "t.conll") in commands["custom-corpus"]["deps"]
    assert "configs/wnut_lora.cfg" in commands["custom-train"]["deps"]


JSONL = (
    '{"text": "Mary visited Paris.", "entities": [[0, 4, "person"], [13, 18, "location"]]}\n'
    '{"text": "Google hired John Smith", "spans": [{"start": 0, "end": 6, "label": "corporation"}]}\n'
)
IOB = "Mary B-person\nvisited O\nParis B-location\n. O\n\nJohn B-person\nSmith I-person\n"


def test_custom_corpus_command(tmp_path: Path) -> None:
    """``spacy project run custom-corpus`` on a copy of the project: JSONL train, IOB dev (formats detected)."""
    (tmp_path / "project.yml").write_text((ROOT / "project.yml").read_text())
    (tmp_path / "spacy_distilner").symlink_to(ROOT / "spacy_distilner")  # a dependency of the command
    (tmp_path / "train.jsonl").write_text(JSONL)
    (tmp_path / "dev.conll").write_text(IOB)
    overrides = {"vars.custom_train": str(tmp_path / "train.jsonl"), "vars.custom_dev": str(tmp_path / "dev.conll")}
    project_run(tmp_path, "custom-corpus", overrides=overrides, capture=True)
    vocab = spacy.blank("en").vocab
    expected = {
        "train": [("Mary", "person"), ("Paris", "location"), ("Google", "corporation")],
        "dev": [("Mary", "person"), ("Paris", "location"), ("John Smith", "person")],
    }
    for split, ents in expected.items():
        docs = DocBin().from_disk(tmp_path / "corpus" / f"custom-{split}.spacy").get_docs(vocab)
        assert [(e.text, e.label_) for doc in docs for e in doc.ents] == ents


def test_runlog_records_time_memory_and_exit_code(tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    assert run(["python", "-c", "x = bytearray(200 * 2**20); x[::4096] = b'1' * len(x[::4096])"], out) == 0
    record = json.loads(out.read_text())
    assert record["returncode"] == 0 and record["wall_s"] >= 0 and record["peak_rss_mb"] > 200
    assert record["command"][0] == sys.executable
    result = CliRunner().invoke(app, ["runlog", "run", str(out), "--", "python", "-c", "raise SystemExit(3)"])
    assert result.exit_code == 3 and json.loads(out.read_text())["returncode"] == 3


def test_table_collects_scores_parameters_time_and_memory(tmp_path: Path) -> None:
    for name, lora_r, trainable in (("full", 0, 100), ("lora", 16, 7)):
        best = tmp_path / "training" / name / "model-best"
        best.mkdir(parents=True)
        best.joinpath("config.cfg").write_text(
            f'[paths]\nencoder = "enc/{name}"\n\n[components]\n\n[components.distilner]\n'
            f"model = ${{paths.encoder}}\nlora_r = {lora_r}\n\n[training]\nmax_steps = {2 * trainable}\n"
        )
        meta = {
            "performance": {"ents_p": 0.5, "ents_r": 0.25, "ents_f": 1 / 3, "ents_per_type": {}},
            "distilner_parameters": {"trainable": trainable, "total": 100, "share": trainable / 100},
        }
        best.joinpath("meta.json").write_text(json.dumps(meta))
        run_record = {"wall_s": 90.0, "peak_rss_mb": 1234.5, "config_overrides": "--training.max_steps 2"}
        (tmp_path / f"{name}.run.json").write_text(json.dumps(run_record))
    result = CliRunner().invoke(app, ["runlog", "table", str(tmp_path), str(tmp_path / "training"), "full", "lora"])
    assert result.exit_code == 0, result.output
    rows = json.loads((tmp_path / "table.json").read_text())
    assert [(r["start"], r["method"], r["trainable"]) for r in rows] == [
        ("enc/full", "full", 100), ("enc/lora", "LoRA r=16", 7)
    ]
    markdown = (tmp_path / "table.md").read_text()
    assert "| lora | `enc/lora` | LoRA r=16 | 14 | 0.500 | 0.250 | **0.333** | 7 (7.00%) | 1.5 min | 1,234 MB |" in markdown
    assert "full: `--training.max_steps 2`" in markdown
    assert result.stdout == markdown
