"""The core suite (``pytest -m core``, run beside transformers 5.x) names files that exist."""

from __future__ import annotations

from pathlib import Path

from conftest import CORE


def test_core_files_exist() -> None:
    """A renamed or removed file must not silently shrink the core suite."""
    here = Path(__file__).parent
    assert CORE and all((here / name).is_file() for name in CORE), sorted(n for n in CORE if not (here / n).is_file())
