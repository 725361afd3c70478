"""The README stays true: its examples run and print what it shows, its config table is the component's
settings with their defaults, its links resolve, and it stays short.

Conventions the README follows (and these tests read):

* every ``python`` block runs on its own (a fresh namespace, in a directory outside the repository);
* a ``text`` block right after a ``python`` or ``bash`` block (only blank lines between) is that block's
  output: for ``python`` what the block prints, for ``bash`` what its last step prints (the part after
  the last `` && ``, run with this environment's ``python`` and ``distilner``);
* numbers with a decimal point compare within :data:`TOLERANCE` (confidences move a little between
  precisions and CPUs), everything else exactly;
* every other ``bash`` block is only checked for syntax.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Optional

import pytest

from spacy_distilner.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MAX_LINES = 350
TOLERANCE = 0.02
FLOAT = re.compile(r"-?\d+\.\d+(?:[eE][-+]?\d+)?")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.MULTILINE | re.DOTALL)
#: Words about how the project was made, which a user's README has no use for.
DEVELOPMENT_WORDS = re.compile(r"\b(session|issues?|lent|here|stage \d)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Block:
    lang: str
    code: str
    line: int
    output: Optional[str]  # the text block shown right after it, if any

    @property
    def id(self) -> str:
        return f"{self.lang}@L{self.line}"


def readme_blocks(text: str) -> list[Block]:
    """The fenced blocks of ``text`` with their line numbers, each with the output block that follows it."""
    found = [(m.group(1), m.group(2), text.count("\n", 0, m.start()) + 1, m.start(), m.end()) for m in FENCE.finditer(text)]
    blocks = []
    for i, (lang, code, line, _, end) in enumerate(found):
        nxt = found[i + 1] if i + 1 < len(found) else None
        follows = nxt is not None and nxt[0] == "text" and not text[end : nxt[3]].strip()
        if lang in ("python", "bash"):
            blocks.append(Block(lang, code, line, nxt[1] if follows and nxt else None))
    return blocks


BLOCKS = readme_blocks(README.read_text(encoding="utf-8"))
PYTHON = [b for b in BLOCKS if b.lang == "python"]
BASH = [b for b in BLOCKS if b.lang == "bash"]


def assert_same_output(expected: str, actual: str) -> None:
    """``actual`` prints ``expected``: the same text, numbers with a decimal point within TOLERANCE."""
    exp_lines, act_lines = expected.strip().splitlines(), actual.strip().splitlines()
    assert len(act_lines) == len(exp_lines), f"expected {len(exp_lines)} lines, got:\n{actual}"
    for exp, act in zip(exp_lines, act_lines):
        exp_numbers, act_numbers = FLOAT.findall(exp), FLOAT.findall(act)
        assert FLOAT.sub("#", exp).strip() == FLOAT.sub("#", act).strip(), f"\nexpected: {exp}\n     got: {act}"
        for e, a in zip(exp_numbers, act_numbers):
            assert abs(float(e) - float(a)) <= TOLERANCE, f"{a} is not within {TOLERANCE} of {e} in\n{act}"


def test_the_comparison_is_loose_on_numbers_only() -> None:
    assert_same_output("[('Paris', 'LOC', 0.97)]", "[('Paris', 'LOC', 0.9612)]")
    with pytest.raises(AssertionError):
        assert_same_output("[('Paris', 'LOC', 0.97)]", "[('Paris', 'LOC', 0.94)]")
    with pytest.raises(AssertionError):
        assert_same_output("[('Paris', 'LOC', 0.97)]", "[('Paris', 'GPE', 0.97)]")
    with pytest.raises(AssertionError):
        assert_same_output("a\nb", "a")


def _env() -> dict[str, str]:
    """This environment's executables first on PATH; no hub."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


_RUNNER = """
import contextlib, io, json, sys, traceback
codes = json.load(open(sys.argv[1], encoding="utf-8"))
printed = []
for code in codes:
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(code, "<README>", "exec"), {"__name__": "__main__"})
        printed.append({"stdout": out.getvalue(), "error": None})
    except BaseException:
        printed.append({"stdout": out.getvalue(), "error": traceback.format_exc()})
json.dump(printed, open(sys.argv[2], "w", encoding="utf-8"))
"""


@pytest.fixture(scope="module")
def python_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Every python block of the README, run once in one fresh process (each in its own namespace)."""
    work = tmp_path_factory.mktemp("readme")
    (work / "codes.json").write_text(json.dumps([b.code for b in PYTHON]), encoding="utf-8")
    (work / "runner.py").write_text(_RUNNER, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "runner.py", "codes.json", "printed.json"],
        cwd=work, env=_env(), capture_output=True, text=True, timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    printed = json.loads((work / "printed.json").read_text(encoding="utf-8"))
    return {b.id: p for b, p in zip(PYTHON, printed)}


def test_the_readme_is_short_and_has_examples() -> None:
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"README.md has {lines} lines (at most {MAX_LINES})"
    assert PYTHON and PYTHON[0].output is not None, "the first python block (the quickstart) shows its output"
    first_command = next(b for b in BASH if b.code.startswith("python3 -m venv"))
    assert first_command.output is not None, "the first command (install and tag) shows its output"


@pytest.mark.parametrize("block", PYTHON, ids=[b.id for b in PYTHON])
def test_python_example_runs_and_prints_what_the_readme_shows(block: Block, python_results: dict) -> None:
    result = python_results[block.id]
    assert result["error"] is None, f"README block at line {block.line} failed:\n{result['error']}"
    if block.output is not None:
        assert_same_output(block.output, result["stdout"])


@pytest.mark.parametrize("block", BASH, ids=[b.id for b in BASH])
def test_shell_example_is_valid_bash(block: Block) -> None:
    done = subprocess.run(["bash", "-n"], input=block.code, capture_output=True, text=True)
    assert done.returncode == 0, f"README block at line {block.line}: {done.stderr}"


SHOWN = [b for b in BASH if b.output is not None]


@pytest.mark.parametrize("block", SHOWN, ids=[b.id for b in SHOWN])
def test_shell_example_prints_what_the_readme_shows(block: Block, tmp_path: Path) -> None:
    last_step = block.code.replace("\\\n", " ").strip().rsplit(" && ", 1)[-1]
    done = subprocess.run(["bash", "-c", last_step], cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"README block at line {block.line}: {last_step}\n{done.stderr[-3000:]}"
    assert block.output is not None
    assert_same_output(block.output, done.stdout)


def _config_table() -> dict[str, str]:
    """The README's config table: setting name -> its default as written (one setting per row)."""
    table = README.read_text(encoding="utf-8").split("| config | default | meaning |", 1)[1].split("\n\n", 1)[0]
    rows = {}
    for line in table.strip().splitlines()[1:]:
        name_cell, default_cell = (cell.strip() for cell in line.strip("|").split("|")[:2])
        rows[name_cell.strip("`")] = default_cell.strip("`")
    return rows


def test_config_table_lists_every_setting_with_its_default() -> None:
    rows = _config_table()
    assert list(rows) == [f.name for f in fields(Settings)], "one row per setting, in the order of Settings"
    defaults = Settings().as_dict()
    for name, written in rows.items():
        assert json.loads(written) == defaults[name], f"{name}: README says {written}, Settings says {defaults[name]!r}"


def test_links_to_files_resolve() -> None:
    text = README.read_text(encoding="utf-8")
    targets = {t.split("#", 1)[0] for t in re.findall(r"\]\(([^)]+)\)", text) if "://" not in t and not t.startswith("#")}
    missing = sorted(t for t in targets if not (ROOT / t).exists())
    assert not missing, missing


def test_no_words_about_how_the_project_was_made() -> None:
    found = DEVELOPMENT_WORDS.findall(README.read_text(encoding="utf-8"))
    assert not found, found
