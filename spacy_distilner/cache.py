"""Where distilner keeps what it derives from a model: ONNX exports, rebuilt models, weight digests.

The cache may refuse a write (a read-only file system, a file where a folder should be, no
permission, a full disk): :func:`write_cached` then writes into a temporary directory for this
process instead (W005), and names the cache and ``$DISTILNER_CACHE`` when that fails too (D027).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Callable, Optional, TypeVar

from .errors import Errors

T = TypeVar("T")
_PROCESS_DIRS: list[Path] = []  # this process's fallback directory, made on first need


def cache_dir() -> Path:
    """``$DISTILNER_CACHE``, else ``$XDG_CACHE_HOME/spacy_distilner``, else ``~/.cache/spacy_distilner``."""
    if os.environ.get("DISTILNER_CACHE"):
        return Path(os.environ["DISTILNER_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "spacy_distilner"


def unwritable(folder: Path, need_bytes: int = 0) -> Optional[str]:
    """Why ``folder`` (created when missing) cannot take ``need_bytes`` of new files; ``None`` when it can."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
        free = shutil.disk_usage(folder).free
    except OSError as err:
        return str(err)
    if free < need_bytes:
        return f"{free / 1e6:,.1f} MB free on its disk, about {need_bytes / 1e6:,.1f} MB needed"
    return None


def _process_dir() -> Path:
    """A temporary directory for this process's cache entries, removed when the process exits."""
    if not _PROCESS_DIRS:
        path = Path(tempfile.mkdtemp(prefix="distilner-cache-"))
        atexit.register(shutil.rmtree, path, ignore_errors=True)
        _PROCESS_DIRS.append(path)
    return _PROCESS_DIRS[0]


def write_cached(key: str, write: Callable[[Path], T], what: str, need_bytes: int = 0) -> T:
    """``write(folder)`` for the cache entry ``key`` (a relative folder), in the cache where it can take
    ``need_bytes`` (checked before writing) and the write succeeds; else in this process's temporary
    directory, with W005. ``write`` must leave no partial file when it raises. D027 when both fail."""
    root = cache_dir()
    problem = unwritable(root / key, need_bytes)
    if problem is None:
        try:
            return write(root / key)
        except OSError as err:  # e.g. the disk filled up while writing
            problem = str(err)
    try:
        fallback = _process_dir() / key
        warnings.warn(Errors.W005.format(what=what, path=root, problem=problem, fallback=fallback))
        fallback.mkdir(parents=True, exist_ok=True)
        return write(fallback)
    except OSError as err:
        raise ValueError(Errors.D027.format(what=what, path=root, problem=problem, fallback_problem=err)) from err
