"""Repair what an interrupted keystore change left behind, without following planted links.

Run under the keystore lock at the start of every transaction:

* staged enclave directories (``.<name>.staging-…``) are removed; one killed after its exchange
  holds the OLD tree, whose nested enclaves are first moved back into the live directory;
* half-written history versions and temporary files (``.<name>.tmp-…``) are removed;
* a staged copy of the whole keystore beside its root (CA renewal) is removed — the live one is
  authoritative, old or new;
* when the journal of an interrupted transaction is present, the caller is told what was
  interrupted, so that it re-derives the manifest, audits the interruption and re-signs the
  integrity manifest over a tree in which every enclave is fully old or fully new.

Anything named like our leftovers but not made by us — a symlink, a file of another owner — is
refused with an error naming it: recovery never follows a link or moves a stranger's files.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cobot_security.atomic import STAGING_MARK, TMP_MARK
from cobot_security.errors import KeystoreError
from cobot_security.json_input import parse_json
from cobot_security.keystore.files import keystore_owner
from cobot_security.keystore.layout import KeystoreLayout
from cobot_security.tree import remove_tree, walk_tree


def _refuse(path: Path, what: str) -> KeystoreError:
    return KeystoreError(path, f"{what} where cobot_security keeps its temporary files; it did not create it: "
                               "inspect and remove it, then retry")


def _checked(path: Path, owner: int) -> os.stat_result:
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        raise _refuse(path, f"a symlink (to {os.readlink(path)!r})")
    if st.st_uid != owner:
        raise _refuse(path, f"an entry owned by uid {st.st_uid}")
    return st


def adopt_nested(old: Path, new: Path) -> None:
    """Move the nested enclave directories of ``old`` into ``new`` where ``new`` lacks them.

    Enclaves may nest (``/cell`` and ``/cell/arm``); only real directories are moved.
    """
    for child in sorted(old.iterdir()):
        st = os.lstat(child)
        if stat.S_ISDIR(st.st_mode) and not child.name.startswith(".") and not os.path.lexists(new / child.name):
            os.rename(child, new / child.name)


def _is_leftover(name: str) -> bool:
    return name.startswith(".") and (STAGING_MARK in name or TMP_MARK in name)


def _leftovers(top: Path, depth: int | None) -> list[Path]:
    """Leftover-looking entries under ``top`` down to ``depth`` levels (None: the whole tree)."""
    found: list[Path] = []
    base = os.path.normpath(os.fspath(top))
    for current, dirs, files in walk_tree(base):
        found += [Path(current, name) for name in dirs + files if _is_leftover(name)]
        if depth is not None and current[len(base):].count(os.sep) + 1 >= depth:
            dirs.clear()
        else:
            dirs[:] = [d for d in dirs if not d.startswith(".")]
    return found


def _remove_leftover(layout: KeystoreLayout, path: Path, owner: int) -> None:
    st = _checked(path, owner)
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(path)
        return
    if path.parent.is_relative_to(layout.enclaves_dir) and STAGING_MARK in path.name:
        live = path.parent / path.name[1:].split(STAGING_MARK, 1)[0]
        if os.path.isdir(live) and not os.path.islink(live):
            adopt_nested(path, live)
    remove_tree(path)


def clean_leftovers(layout: KeystoreLayout) -> list[Path]:
    """Remove staging directories, temporary files and a staged keystore copy; return what went.

    :raises KeystoreError: a leftover-looking entry is a symlink or belongs to another user.
    """
    owner = keystore_owner(layout)
    removed: list[Path] = []
    try:
        # Where our writers leave temporaries: anywhere in enclaves/, directly in public/, private/
        # and .cobot_security/, and in history/<enclave>/ (half-archived versions).
        tops = ((layout.enclaves_dir, None), (layout.public_dir, 1), (layout.private_dir, 1), (layout.meta_dir, 1),
                (layout.history_dir, 2))
        for top, depth in tops:
            if top.is_dir() and not top.is_symlink():
                for path in _leftovers(top, depth):
                    _remove_leftover(layout, path, owner)
                    removed.append(path)
        prefix = f".{layout.root.name}{STAGING_MARK}"
        for sibling in layout.root.parent.iterdir():
            if sibling.name.startswith(prefix):
                _checked(sibling, owner)
                remove_tree(sibling)
                removed.append(sibling)
    except OSError as exc:
        raise KeystoreError(exc.filename or layout.root, f"cannot clean up an interrupted change: "
                                                         f"{exc.strerror or exc}") from exc
    return removed


def recover_interrupted(layout: KeystoreLayout) -> dict[str, str] | None:
    """Clean leftovers; when a journal shows an interrupted transaction, describe it for the audit log.

    :returns: audit details (``interrupted``, ``started``, ``removed``) or None when the last
        transaction completed.
    :raises KeystoreError: a refused leftover (see :func:`clean_leftovers`) or an unreadable journal.
    """
    removed = clean_leftovers(layout)
    if not os.path.lexists(layout.journal):
        return None
    _checked(layout.journal, keystore_owner(layout))
    try:
        journal = parse_json(layout.journal.read_bytes())
    except (OSError, ValueError):
        journal = {}
    if not isinstance(journal, dict):
        journal = {}
    return {"interrupted": str(journal.get("operation", "unknown")), "started": str(journal.get("started", "")),
            "removed": str(len(removed))}
