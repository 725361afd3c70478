"""`spacy package` builds a pip-installable model wheel that loads by name and tags text."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import spacy

from tiny import make_tiny_model


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
