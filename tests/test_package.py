"""Packaging: the project's own wheel carries the shipped models and, installed into a fresh virtual
environment, runs the README's quickstart; `spacy package` builds a model wheel that loads by name."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
import spacy

import spacy_distilner
from test_readme import PYTHON, assert_same_output
from tiny import make_tiny_model

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "spacy_distilner"
#: What the wheel is built from: the package and the files pyproject.toml names.
SOURCES = ["pyproject.toml", "README.md", "LICENSE", "spacy_distilner"]


def _skip_or_fail(reason: str) -> None:
    """Skip where the tools are missing, except on CI (``CI=true``), where that is a failure."""
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def project_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``python -m build --wheel`` on a copy of the project (the checkout stays untouched), offline:
    ``--no-isolation`` uses this environment's setuptools and wheel."""
    try:
        import build  # noqa: F401
        import setuptools  # noqa: F401
        import wheel  # noqa: F401
    except ImportError as err:
        _skip_or_fail(f"cannot build a wheel: {err.name} is not installed (pip install build setuptools wheel)")
    src, out = tmp_path_factory.mktemp("src"), tmp_path_factory.mktemp("dist")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(ROOT / name, src / name)
    done = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(src)],
        capture_output=True, text=True, timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (found,) = out.glob("*.whl")
    return found


def test_the_wheel_carries_the_shipped_models_and_the_licence(project_wheel: Path) -> None:
    assert project_wheel.name.startswith(f"spacy_distilner-{spacy_distilner.__version__}-"), project_wheel.name
    names = set(zipfile.ZipFile(project_wheel).namelist())
    shipped = {p.relative_to(ROOT).as_posix() for p in (PACKAGE / "models").rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert any(n.endswith(".safetensors") for n in shipped)
    assert shipped <= names, sorted(shipped - names)
    assert any(re.search(r"\.dist-info/(licenses/)?LICENSE$", n) for n in names), "LICENSE is not in the wheel"
    assert not any(n.startswith(("tests/", "training/", "corpus/", "assets/")) for n in names)


def test_the_wheel_installs_into_a_fresh_venv_and_runs_the_quickstart(project_wheel: Path, tmp_path: Path) -> None:
    """No source tree on the path: the wheel goes into a new venv (``--no-deps``, offline), which sees this
    environment's packages through a ``.pth`` file (their own ``.pth`` hooks, such as an editable install
    of this project, do not run there)."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=300)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    site_dir = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    here = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    Path(site_dir, "_outer_environment.pth").write_text("\n".join(sorted(here)) + "\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", str(project_wheel)],
        capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    check = (
        "import os, sys, spacy_distilner; "
        f"assert {str(ROOT)!r} not in [os.path.abspath(p or '.') for p in sys.path], sys.path; "
        "assert spacy_distilner.__file__.startswith(sys.prefix), spacy_distilner.__file__; "
        "print(spacy_distilner.__version__, file=sys.stderr)\n"
    )
    quickstart = PYTHON[0]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    run = subprocess.run(
        [str(python), "-c", check + quickstart.code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert spacy_distilner.__version__ in run.stderr
    assert quickstart.output is not None
    assert_same_output(quickstart.output, run.stdout)


@pytest.mark.parametrize("backend,precision", [("torch", "fp32"), ("onnx", "int8")])
def test_packaged_model_installs_and_loads(tmp_path: Path, backend: str, precision: str) -> None:
    nlp = spacy.blank("en")
    config = {"model": str(make_tiny_model(tmp_path / "m")), "backend": backend, "precision": precision}
    nlp.add_pipe("distilner", config=config)
    expected = [(e.start_char, e.end_char, e.label_) for e in nlp("John Smith went to Paris.").ents]
    nlp.meta.update({"name": "distilner_tiny", "version": "0.0.1"})
    nlp.to_disk(tmp_path / "pipe")
    (tmp_path / "m").rename(tmp_path / "gone")  # the wheel must not need the original model directory
    (tmp_path / "out").mkdir()
    subprocess.run(
        [sys.executable, "-m", "spacy", "package", str(tmp_path / "pipe"), str(tmp_path / "out"), "--build", "wheel"],
        check=True, capture_output=True, timeout=300,
    )
    wheel = next((tmp_path / "out").rglob("*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.endswith("distilner/model/model.safetensors") for n in names)
    assert any(n.endswith("model_int8.onnx") for n in names) == (backend == "onnx")  # exported once, shipped
    meta = json.loads(next((tmp_path / "out").rglob("meta.json")).read_text())
    assert any(r.startswith("spacy-distilner") for r in meta["requirements"])
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(tmp_path / "site"), str(wheel)],
        check=True, capture_output=True, timeout=300,
    )
    code = (
        "import json, spacy; nlp = spacy.load('en_distilner_tiny'); pipe = nlp.get_pipe('distilner'); "
        "ents = [(e.start_char, e.end_char, e.label_) for e in nlp('John Smith went to Paris.').ents]; "
        "print(json.dumps([pipe.cfg['backend'], pipe.backend_info['precision'], ents]))"
    )
    env = {"PYTHONPATH": str(tmp_path / "site"), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env, timeout=300)
    used_backend, used_precision, ents = json.loads(out.stdout.strip().splitlines()[-1])
    assert (used_backend, used_precision) == (backend, precision)
    assert [tuple(e) for e in ents] == expected
