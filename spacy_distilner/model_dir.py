"""The on-disk layout of a distilner model: where the weights sit in a pipeline, and ``distilner.json``.

A pipeline stores the component's model under ``<component>/model`` (a LoRA-trained one also its
adapter under ``model/adapter``). Beside the weights, ``distilner.json`` holds the settings that
belong to the model (``SETTINGS_KEYS``) and the size and SHA-256 of every weight file, checked on load.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import weakref
from pathlib import Path
from typing import Any, Callable, Mapping

from .cache import cache_dir
from .errors import Errors

MODEL_DIR = "model"  # under the component's directory in a saved pipeline
ADAPTER_DIR = "adapter"  # under MODEL_DIR when trained with LoRA: the adapter and head alone
#: Model settings stored in ``distilner.json`` (``languages``: what the model was trained on, if known).
SETTINGS_KEYS = ("temperature", "max_length", "stride", "languages")
SETTINGS_FILE = "distilner.json"  # beside the weights: temperature, window, languages, weight digests
WEIGHTS_KEY = "weights"  # in SETTINGS_FILE: {file name: {"size": bytes, "sha256": hex}}
_DIGESTS: dict[tuple[str, int, int], str] = {}  # (resolved path, size, mtime_ns) -> sha256, this process


def read_json_object(file: Path) -> dict:
    """A JSON object from ``file``; D022 naming the file when it is not JSON or not an object."""
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(Errors.D022.format(file=file, problem=f"not valid JSON ({err})")) from err
    if not isinstance(data, dict):
        raise ValueError(Errors.D022.format(file=file, problem=f"expected a JSON object, got {type(data).__name__}"))
    return data


def _digest_cache() -> Path:
    return cache_dir() / "digests.json"


def file_digest(file: Path) -> str:
    """SHA-256 of ``file``, computed once per (path, size, mtime) and remembered in the cache directory."""
    stat = file.stat()
    key = (str(file.resolve()), stat.st_size, stat.st_mtime_ns)
    if key in _DIGESTS:
        return _DIGESTS[key]
    cache_key = "|".join(map(str, key))
    try:
        cached = json.loads(_digest_cache().read_text())
    except (OSError, ValueError):
        cached = {}
    if not isinstance(cached, dict):
        cached = {}
    digest = cached.get(cache_key)
    if not isinstance(digest, str):
        sha = hashlib.sha256()
        with open(file, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                sha.update(block)
        digest = sha.hexdigest()
        cached[cache_key] = digest
        with contextlib.suppress(OSError):  # a read-only cache only costs the hash next time
            _digest_cache().parent.mkdir(parents=True, exist_ok=True)
            _digest_cache().write_text(json.dumps(cached))
    _DIGESTS[key] = digest
    return digest


def weight_digests(files: list[Path]) -> dict[str, dict[str, Any]]:
    """``{file name: {"size", "sha256"}}`` of weight ``files`` (stored in ``distilner.json``)."""
    return {f.name: {"size": f.stat().st_size, "sha256": file_digest(f)} for f in files}


def write_settings(path: Path, settings: Mapping[str, Any], weight_files: list[Path]) -> None:
    """``distilner.json`` in ``path``: ``settings`` plus the digests of the ``weight_files`` saved there."""
    (path / SETTINGS_FILE).write_text(json.dumps({**settings, WEIGHTS_KEY: weight_digests(weight_files)}, indent=2))


def read_settings(path: Path) -> dict:
    """``distilner.json`` of ``path`` (``{}`` when absent); D022 when it is not a JSON object."""
    file = path / SETTINGS_FILE
    return read_json_object(file) if file.is_file() else {}


def verify_weights(path: Path, recorded: Mapping[str, Any]) -> None:
    """D023 unless every weight file recorded in ``distilner.json`` has its recorded size and SHA-256."""
    for name, expected in recorded.items():
        file = path / name
        if not isinstance(expected, dict) or "/" in name or not file.is_file():
            raise ValueError(Errors.D022.format(file=path / SETTINGS_FILE, problem=f"bad weight record {name!r}"))
        size = file.stat().st_size
        if size != expected.get("size"):
            raise ValueError(Errors.D023.format(file=file, what="size", found=size, expected=expected.get("size")))
        digest = file_digest(file)
        if digest != expected.get("sha256"):
            raise ValueError(Errors.D023.format(file=file, what="SHA-256", found=digest, expected=expected.get("sha256")))


def pack_dir(write: Callable[[Path], None]) -> bytes:
    """The files ``write`` puts in a temporary directory, as one msgpack dict of relative path -> bytes."""
    import srsly

    with tempfile.TemporaryDirectory() as tmp:
        write(Path(tmp))
        files = {str(p.relative_to(tmp)): p.read_bytes() for p in Path(tmp).rglob("*") if p.is_file()}
    return srsly.msgpack_dumps(files)


def _remove_in(pid: int, path: Path) -> None:
    """Remove ``path`` when called in process ``pid`` (a forked child leaves its parent's files alone)."""
    if os.getpid() == pid:
        shutil.rmtree(path, ignore_errors=True)


class Unpacked:
    """A temporary directory of unpacked files, removed when this object is garbage-collected (or at exit)."""

    def __init__(self) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="distilner-"))
        weakref.finalize(self, _remove_in, os.getpid(), self.path)


def unpack_dir(data: bytes) -> Unpacked:
    """Unpack ``pack_dir``'s bytes into a temporary directory that lives as long as the returned object."""
    import srsly

    unpacked = Unpacked()
    root = unpacked.path.resolve()
    for name, content in srsly.msgpack_loads(data).items():
        target = unpacked.path / name
        if not target.resolve().is_relative_to(root):
            raise ValueError(f"packed file {name!r} is outside its directory")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    return unpacked
