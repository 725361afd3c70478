"""Faults at the edges: impossible settings, unwritable caches, native memory over long streams."""

from __future__ import annotations

import os
import platform
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from pathlib import Path
from typing import Callable, Iterator

import pytest
import spacy

from typer.testing import CliRunner

from spacy_distilner import cache
from spacy_distilner.allocator import release_free_memory
from spacy_distilner.cli import app
from spacy_distilner.backends import onnx_export
from spacy_distilner.settings import RANGES, Settings
from tiny import WORDS

Mount = Callable[[str], Path]
TEXT = "John Smith flew from London to New York on Tuesday to meet the people of Apple ."


@pytest.mark.parametrize(
    "setting, value",
    [
        ("num_threads", 0),
        ("num_threads", -1),
        ("num_threads", 2.5),
        ("max_length", 0),
        ("max_length", -5),
        ("stride", -1),
        ("max_batch_tokens", 0),
        ("threshold", 1.5),
        ("label_smoothing", 1.0),
        ("lora_dropout", -0.1),
        ("lora_r", -1),
    ],
)
def test_out_of_range_settings_name_the_setting_and_its_range(setting: str, value: object) -> None:
    with pytest.raises(ValueError, match=rf"D013\] Setting {setting} must be .*(>=|in \[).*got {value}"):
        Settings(**{setting: value})


def test_every_numeric_setting_has_a_range() -> None:
    numeric = {name for name, value in Settings().as_dict().items() if type(value) in (int, float)}
    numeric |= {"max_length", "stride", "num_threads"}  # null by default
    assert numeric == set(RANGES)


def test_null_and_in_range_values_are_accepted() -> None:
    Settings(num_threads=None, max_length=None, stride=None)
    Settings(num_threads=1, max_length=1, stride=0, threshold=1.0, label_smoothing=0.0)


def test_the_factory_refuses_num_threads_zero_before_loading(iob_dir: Path) -> None:
    with pytest.raises(ValueError, match="D013.*num_threads"):
        spacy.blank("en").add_pipe("distilner", config={"model": str(iob_dir), "num_threads": 0})


@pytest.mark.parametrize("max_length", [65, 1024, 2])
def test_max_length_is_checked_against_the_loaded_model(iob_dir: Path, max_length: int) -> None:
    """The tiny model has 64 positions and 2 special tokens: 3 … 64 run, others name max_length and the range
    when the model is loaded (on first use)."""
    pipe = spacy.blank("en").add_pipe("distilner", config={"model": str(iob_dir), "max_length": max_length})
    with pytest.raises(ValueError, match=r"D013\] Setting max_length must be an integer in \[3, 64\] for this model"):
        pipe.engine


@pytest.mark.parametrize("max_length", [3, 64])
def test_max_length_at_the_bounds_runs(iob_dir: Path, max_length: int) -> None:
    nlp = spacy.blank("en")
    nlp.add_pipe("distilner", config={"model": str(iob_dir), "max_length": max_length})
    doc = nlp("John Smith flew from London to New York on Tuesday to meet the people of Apple . " * 4)
    assert len(doc._.ner_probs) == len(doc)


def test_a_short_max_length_blames_max_length_not_the_models_stored_stride(tmp_path: Path, iob_dir: Path) -> None:
    """A model that stored stride 16 cannot run max_length 10: the error names max_length and how to go lower."""
    nlp = spacy.blank("en")
    nlp.add_pipe("distilner", config={"model": str(iob_dir), "stride": 16})
    nlp.to_disk(tmp_path / "p")
    model = str(tmp_path / "p" / "distilner" / "model")  # its distilner.json keeps stride 16
    short = spacy.blank("en").add_pipe("distilner", config={"model": model, "max_length": 10})
    with pytest.raises(ValueError, match=r"Setting max_length must be an integer in \[19, 64\].*stored stride 16"):
        short.engine
    assert spacy.blank("en").add_pipe("distilner", config={"model": model, "max_length": 10, "stride": 2}).stride == 2


# ------------------------------------------------------------------ native memory over long streams
def test_a_stream_of_varied_lengths_meets_few_batch_shapes(nlp: spacy.language.Language) -> None:
    """Every distinct batch shape costs native memory (oneDNN primitives, allocator bins): 600 texts of
    1-80 words (some over the tiny model's 64-piece window) run in batches of 16 bucketed widths at most,
    whatever their lengths."""
    backend = nlp.get_pipe("distilner").engine.backend
    forward, shapes = backend.forward, set()

    def recording(input_ids, attention_mask):  # type: ignore[no-untyped-def]
        shapes.add(input_ids.shape)
        return forward(input_ids, attention_mask)

    backend.forward = recording
    rng = random.Random(0)
    texts = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 80))) for _ in range(600)]
    docs = list(nlp.pipe(texts, batch_size=37))
    assert all(len(doc._.ner_probs) == len(doc) for doc in docs)
    assert {width for _, width in shapes} <= set(range(4, 65, 4))
    assert len({length for doc in docs for length in [len(doc)]}) > 16  # more lengths than widths


def test_free_memory_goes_back_to_the_system_on_glibc() -> None:
    if not (sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"):
        pytest.skip("malloc_trim is glibc's")
    assert release_free_memory()


# ----------------------------------------------------------------------------- unwritable caches
@pytest.fixture()
def tmpfs(tmp_path: Path) -> Iterator[Mount]:
    """``tmpfs(options)``: a fresh tmpfs mounted with ``options`` (``ro``, ``size=64k``), unmounted afterwards.

    Mounting needs root and the right to mount (a container may lack it): skipped otherwise."""
    mounted: list[Path] = []

    def mount(options: str) -> Path:
        if os.geteuid() != 0:
            pytest.skip("mounting a tmpfs (read-only or full-disk cases) needs root")
        point = tmp_path / f"mnt{len(mounted)}"
        point.mkdir()
        command = ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", str(point)], check=True)


@pytest.fixture()
def fresh_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test gets its own process fallback directory."""
    monkeypatch.setattr(cache, "_PROCESS_DIRS", [])


def _onnx_pipeline(model: Path, cache_path: Path, monkeypatch: pytest.MonkeyPatch) -> spacy.language.Language:
    monkeypatch.setenv("DISTILNER_CACHE", str(cache_path))
    nlp = spacy.blank("en")
    nlp.add_pipe("distilner", config={"model": str(model), "backend": "onnx"})
    return nlp


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def _runs_from_the_fallback(nlp: spacy.language.Language, cache_path: Path, problem: str) -> None:
    """The export lands in this process's temporary directory with W005 naming the cache, the problem
    and $DISTILNER_CACHE, and the pipeline then runs."""
    warning = rf"W005\] The distilner cache '{cache_path}' cannot take the ONNX export \(.*{problem}.*DISTILNER_CACHE"
    with pytest.warns(UserWarning, match=warning):
        doc = nlp(TEXT)
    assert len(doc._.ner_probs) == len(doc)
    path = nlp.get_pipe("distilner").engine.backend.path
    assert path.is_file() and path.is_relative_to(cache._process_dir())


@pytest.mark.usefixtures("fresh_fallback")
def test_a_cache_path_under_a_file_falls_back_to_a_temporary_directory(
    iob_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "file").write_text("not a directory")
    nlp = _onnx_pipeline(iob_dir, tmp_path / "file" / "cache", monkeypatch)
    _runs_from_the_fallback(nlp, tmp_path / "file" / "cache", "Not a directory")


@pytest.mark.usefixtures("fresh_fallback")
def test_a_read_only_cache_falls_back_to_a_temporary_directory(
    iob_dir: Path, tmpfs: Mount, monkeypatch: pytest.MonkeyPatch
) -> None:
    read_only = tmpfs("ro")
    nlp = _onnx_pipeline(iob_dir, read_only / "cache", monkeypatch)
    _runs_from_the_fallback(nlp, read_only / "cache", "Read-only file system")


@pytest.mark.usefixtures("fresh_fallback")
def test_a_read_only_cache_serves_the_exports_it_holds(
    iob_dir: Path, tmpfs: Mount, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = tmpfs("size=4m")
    first = _onnx_pipeline(iob_dir, disk, monkeypatch)
    expected = [(e.start, e.end, e.label_) for e in first(TEXT).ents]
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
    again = _onnx_pipeline(iob_dir, disk, monkeypatch)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert [(e.start, e.end, e.label_) for e in again(TEXT).ents] == expected
    assert not [w for w in caught if "W005" in str(w.message)]
    assert again.get_pipe("distilner").engine.backend.path.is_relative_to(disk)


@pytest.mark.usefixtures("fresh_fallback")
def test_a_full_disk_is_seen_before_the_export(
    iob_dir: Path, tmpfs: Mount, monkeypatch: pytest.MonkeyPatch
) -> None:
    full = tmpfs("size=64k")
    _runs_from_the_fallback(_onnx_pipeline(iob_dir, full / "cache", monkeypatch), full / "cache", "MB free")
    assert _files(full) == []


@pytest.mark.usefixtures("fresh_fallback")
def test_a_disk_that_fills_during_the_export_leaves_no_partial_file(
    iob_dir: Path, tmpfs: Mount, monkeypatch: pytest.MonkeyPatch
) -> None:
    full = tmpfs("size=64k")
    monkeypatch.setattr(onnx_export, "_export_bytes", lambda hf_model, precision: 0)  # unseen by the check before
    nlp = _onnx_pipeline(iob_dir, full / "cache", monkeypatch)
    _runs_from_the_fallback(nlp, full / "cache", "No space left on device")
    assert _files(full) == []


def test_no_writable_place_at_all_is_a_coded_error_naming_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "file").write_text("not a directory")
    monkeypatch.setenv("DISTILNER_CACHE", str(tmp_path / "file" / "cache"))
    monkeypatch.setattr(cache, "_PROCESS_DIRS", [tmp_path / "file" / "tmp"])
    error = r"D027\] Could not write the ONNX export into the distilner cache '.*file/cache'.*DISTILNER_CACHE"
    with pytest.warns(UserWarning, match="W005"), pytest.raises(ValueError, match=error):
        cache.write_cached("onnx/key", lambda folder: folder / "model.onnx", "ONNX export")


# ------------------------------------------------------------------- unwritable outputs, SIGTERM
@pytest.mark.parametrize("command, output", [("annotate", "out.jsonl"), ("render", "out.html")])
def test_a_read_only_output_directory_fails_before_the_model_loads(
    tmpfs: Mount, tmp_path: Path, command: str, output: str
) -> None:
    """D028, exit code 1, no traceback; the model (which does not exist) is never loaded."""
    (tmp_path / "in.txt").write_text("John Smith lives in London.\n")
    args = [command, str(tmp_path / "in.txt"), str(tmpfs("ro") / output), "--model", str(tmp_path / "nothing")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1 and "D028" in result.output and "Read-only file system" in result.output
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output


def _wait_for(check: Callable[[], bool], what: str, seconds: float = 600) -> None:
    """Poll ``check`` until true (a loaded machine may take minutes to import torch and spaCy)."""
    end = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < end, f"no {what} after {seconds} s"
        time.sleep(0.2)


def test_sigterm_while_annotating_keeps_the_old_output_and_removes_the_temporary_file(
    iob_dir: Path, tmp_path: Path
) -> None:
    (tmp_path / "in.txt").write_text("John Smith flew from London to New York on Tuesday.\n" * 200_000)
    out = tmp_path / "out.jsonl"
    out.write_text("the old output\n")
    cmd = [sys.executable, "-m", "spacy_distilner", "annotate", str(tmp_path / "in.txt"), str(out), "-m", str(iob_dir)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    temporary = lambda: [p for p in tmp_path.glob(".out.jsonl.*.tmp") if p.stat().st_size > 0]  # noqa: E731
    try:
        _wait_for(lambda: bool(temporary()) or proc.poll() is not None, "temporary output")
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 143, stderr
    assert "Traceback" not in stderr
    assert out.read_text() == "the old output\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt", "out.jsonl"]


def test_serve_shuts_down_gracefully_on_sigterm(iob_dir: Path) -> None:
    pytest.importorskip("uvicorn", reason="serve needs the 'serve' extra")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "spacy_distilner", "serve", "--model", str(iob_dir), "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def healthy() -> bool:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
                return response.status == 200
        except OSError:
            return False

    try:
        _wait_for(healthy, "healthy server")
        proc.send_signal(signal.SIGTERM)
        log, _ = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 143, log
    assert "Application shutdown complete" in log and "Traceback" not in log
