"""Handing the C allocator's free memory back to the system between batches.

glibc keeps freed heap memory for reuse; tensors of many sizes leave it scattered, so a long-running
process's resident memory stays at its high-water mark. ``malloc_trim`` returns the free pages.
"""

from __future__ import annotations

import ctypes
import functools
from typing import Any, Optional


@functools.lru_cache(maxsize=None)
def _malloc_trim() -> Optional[Any]:
    """glibc's ``malloc_trim`` from the process's own C library, or ``None`` (macOS, Windows, musl)."""
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError, TypeError):  # TypeError: Windows has no CDLL(None)
        return None


def release_free_memory() -> bool:
    """Return the allocator's free pages to the system; ``False`` where the C library cannot."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
