"""``walk_tree`` and ``remove_tree``: ``os.walk`` and ``shutil.rmtree`` without recursion.

``os.walk`` recurses once per directory level (Python 3.11), so a planted chain of a thousand
nested directories under a keystore ended every reader of it in a RecursionError.  This walk keeps
its own stack: any depth the file system allows is walked.  Same contract otherwise: top-down,
``(directory, dirs, files)`` with names, symlinks to directories listed in ``dirs`` but never
entered, unreadable directories skipped, and ``dirs`` may be pruned or reordered in place by the
caller before the walk descends.

``shutil.rmtree`` recurses the same way (Python 3.11), so removing a replaced enclave version, a
staging directory or an old history version that held such a chain raised a RecursionError in the
middle of a keystore change, and again at every later one.  :func:`remove_tree` removes any depth
with two open descriptors: it goes down and back up through the directories themselves (``..``,
checked against the identity recorded on the way down), never follows a symlink (each directory is
opened ``O_NOFOLLOW``; a link is unlinked, not entered) and lists each directory once.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator

__all__ = ["remove_tree", "walk_tree"]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


def walk_tree(top: str | os.PathLike[str]) -> Iterator[tuple[str, list[str], list[str]]]:
    """Yield ``(directory, dirs, files)`` for ``top`` and every directory below it (see the module)."""
    pending = [(os.fspath(top), True)]
    while pending:
        here, is_top = pending.pop()
        try:
            # Below the top, O_NOFOLLOW: a directory swapped for a link since it was listed is not entered.
            fd = os.open(here, _DIR_FLAGS if not is_top else _DIR_FLAGS & ~os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            dirs, files, links = _classify(fd)
        except OSError:
            continue
        finally:
            os.close(fd)
        yield here, dirs, files
        pending.extend((os.path.join(here, name), False) for name in reversed(dirs) if name not in links)


def _classify(fd: int) -> tuple[list[str], list[str], set[str]]:
    """(dirs, files, symlinks to directories) of the open directory ``fd``.

    The descriptor must stay open until every entry is classified: where the listing gives no
    type (``DT_UNKNOWN``: XFS without ftype, some FUSE and network file systems) and for every
    symlink, the entry is stat-ed relative to it.
    """
    dirs: list[str] = []
    files: list[str] = []
    links: set[str] = set()
    with os.scandir(fd) as listing:
        for entry in listing:
            try:
                if entry.is_symlink():
                    is_dir = entry.is_dir()  # listed as a directory, never entered
                    if is_dir:
                        links.add(entry.name)
                else:
                    is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                is_dir = False
            (dirs if is_dir else files).append(entry.name)
    return dirs, files, links


def _identity(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def _clear_files(fd: int) -> list[str]:
    """Unlink every entry of the directory ``fd`` that is not a directory; its subdirectories' names."""
    subdirs = []
    with os.scandir(fd) as listing:
        for entry in listing:
            if entry.is_dir(follow_symlinks=False):
                subdirs.append(entry.name)
            else:
                os.unlink(entry.name, dir_fd=fd)
    return subdirs


def remove_tree(path: str | os.PathLike[str], *, ignore_errors: bool = False) -> None:
    """Remove ``path`` and everything below it, at any depth, following no symlink (see the module).

    A symlink or file at ``path`` itself is unlinked.  ``ignore_errors`` as for ``shutil.rmtree``:
    what cannot be removed is left, silently.

    :raises OSError: an entry cannot be removed, or a directory was moved or swapped for a link
        while the tree was being removed (nothing outside ``path`` is touched then).
    """
    try:
        _remove(os.fspath(path))
    except OSError:
        if not ignore_errors:
            raise


def _remove(path: str) -> None:
    if not stat.S_ISDIR(os.lstat(path).st_mode):
        os.unlink(path)
        return
    fd = os.open(path, _DIR_FLAGS)
    try:
        # From the top down to the open directory: (its identity, its name in its parent, the
        # subdirectories still to remove).
        chain = [(_identity(fd), "", _clear_files(fd))]
        while True:
            _, _, pending = chain[-1]
            if pending:
                name = pending.pop()
                child = os.open(name, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = child
                chain.append((_identity(fd), name, _clear_files(fd)))
                continue
            if len(chain) == 1:
                break
            _, name, _ = chain.pop()
            parent = os.open("..", _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = parent
            if _identity(fd) != chain[-1][0]:
                raise OSError(errno.ESTALE, "a directory was moved while its tree was being removed", path)
            os.rmdir(name, dir_fd=fd)
    finally:
        os.close(fd)
    os.rmdir(path)
