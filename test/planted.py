"""Hostile trees planted in a keystore by a test, and removed again by it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def directory_chain(base: Path, depth: int) -> Iterator[Path]:
    """``base/d/d/.../d`` (``depth`` levels; deeper than Python's recursion limit when > 1000); removed after.

    Removed bottom-up here: shutil.rmtree (pytest's temporary-directory cleanup) recurses per level.
    """
    deep = str(base)
    for _ in range(depth):
        deep += "/d"
        os.mkdir(deep)
    try:
        yield Path(deep)
    finally:
        for _ in range(depth):
            for entry in os.scandir(deep):
                os.unlink(entry.path)
            os.rmdir(deep)
            deep = os.path.dirname(deep)
