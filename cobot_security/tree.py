"""``walk_tree``: ``os.walk(top, followlinks=False)`` without recursion.

``os.walk`` recurses once per directory level (Python 3.11), so a planted chain of a thousand
nested directories under a keystore ended every reader of it in a RecursionError.  This walk keeps
its own stack: any depth the file system allows is walked.  Same contract otherwise: top-down,
``(directory, dirs, files)`` with names, symlinks to directories listed in ``dirs`` but never
entered, unreadable directories skipped, and ``dirs`` may be pruned or reordered in place by the
caller before the walk descends.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

__all__ = ["walk_tree"]


def walk_tree(top: str | os.PathLike[str]) -> Iterator[tuple[str, list[str], list[str]]]:
    """Yield ``(directory, dirs, files)`` for ``top`` and every directory below it (see the module)."""
    pending = [os.fspath(top)]
    while pending:
        here = pending.pop()
        try:
            with os.scandir(here) as listing:
                entries = list(listing)
        except OSError:
            continue
        dirs: list[str] = []
        files: list[str] = []
        for entry in entries:
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            (dirs if is_dir else files).append(entry.name)
        yield here, dirs, files
        pending.extend(os.path.join(here, name) for name in reversed(dirs)
                       if not os.path.islink(os.path.join(here, name)))
