"""Versioned history of enclave directories: archive replaced versions, list, prune, judge for restore.

Each version is one enclave's own files as they were live (regular files with their modes,
symlinks as links; nested enclaves are not part of it) under::

    <root>/.cobot_security/history/<enclave path, '/' → '~'>/<UTC timestamp>-<serial>/

A keystore transaction archives a replaced enclave by *moving* the tree it just exchanged out
(:func:`archive_tree`), so a version is complete or absent and costs one rename.  Restoring one
(:mod:`cobot_security.keystore.rollback`) builds it into a staged directory with
:func:`build_restored`.
"""

from __future__ import annotations

import datetime as _dt
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from cobot_security import atomic
from cobot_security.errors import InputError, KeystoreError
from cobot_security.keystore import pki
from cobot_security.keystore.crl import is_revoked, parse_crl
from cobot_security.keystore.files import read_keystore_file
from cobot_security.keystore.layout import (
    CERT,
    KEY,
    PERMISSIONS_P7S,
    PERMISSIONS_XML,
    KeystoreLayout,
)
from cobot_security.tree import remove_tree

#: Versions kept per enclave unless the caller asks otherwise.
DEFAULT_RETENTION = 5



@dataclass(frozen=True)
class HistoryVersion:
    """One archived version of an enclave (newest first in :func:`list_history`)."""

    enclave: str
    version: str
    directory: Path
    serial: str
    not_before: _dt.datetime
    not_after: _dt.datetime


def enclave_history_dir(layout: KeystoreLayout, path: str) -> Path:
    """Versions of enclave ``path``: ``/cell/arm`` → ``history/~cell~arm``.

    :raises InvalidNameError: the enclave path is unsafe.
    """
    layout.enclave_dir(path)  # validates the name ('~' is not a ROS name character)
    return layout.history_dir / path.replace("/", "~")


def _stamp(now: _dt.datetime) -> str:
    return now.astimezone(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def _certificate(layout: KeystoreLayout, directory: Path) -> x509.Certificate:
    return pki.load_certificate(read_keystore_file(layout, directory / CERT), directory / CERT)


def _version(layout: KeystoreLayout, path: str, directory: Path) -> HistoryVersion:
    cert = _certificate(layout, directory)
    return HistoryVersion(path, directory.name, directory, format(cert.serial_number, "x"),
                          cert.not_valid_before_utc, cert.not_valid_after_utc)


def _version_names(base: Path) -> list[str]:
    """Version directories under ``base``, newest first; hidden (half-written) ones skipped."""
    return sorted((d.name for d in base.iterdir()
                   if stat.S_ISDIR(os.lstat(d).st_mode) and not d.name.startswith(".")), reverse=True)


def archive_tree(layout: KeystoreLayout, path: str, tree: Path, now: _dt.datetime) -> str:
    """Move ``tree`` (a replaced version of enclave ``path``) into the history; return its version name.

    The caller holds the keystore lock and has already moved nested enclaves out of ``tree``.

    A tree whose certificate cannot be read (a planted link, garbage) is archived as found under
    ``<time>-unreadable``: moved, never read, and never offered for a rollback.

    :raises OSError: the disk refuses (the caller's transaction wraps it).
    """
    try:
        serial = format(_certificate(layout, tree).serial_number, "x")
    except KeystoreError:
        serial = "unreadable"
    base = enclave_history_dir(layout, path)
    for parent in (layout.meta_dir, layout.history_dir, base):
        atomic.make_private_dir(parent)
    name = f"{_stamp(now)}-{serial}"
    final, counter = base / name, 1
    while os.path.lexists(final):
        final, counter = base / f"{name}-{counter}", counter + 1
    os.rename(tree, final)
    atomic.set_mode(final, 0o700)
    return final.name


def list_history(layout: KeystoreLayout, path: str) -> list[HistoryVersion]:
    """Archived versions of enclave ``path`` with a readable certificate, newest first.

    Staging leftovers and versions archived unreadable (see :func:`archive_tree`) are skipped.

    :raises InvalidNameError: the enclave path is unsafe.
    """
    base = enclave_history_dir(layout, path)
    if not base.is_dir() or base.is_symlink():
        return []
    versions = []
    for name in _version_names(base):
        try:
            versions.append(_version(layout, path, base / name))
        except (KeystoreError, FileNotFoundError):
            continue
    return versions


def prune_history(layout: KeystoreLayout, path: str, retention: int = DEFAULT_RETENTION) -> list[Path]:
    """Delete the oldest versions of ``path`` beyond ``retention``; return what was removed.

    :raises InputError: ``retention`` below 1.
    """
    if retention < 1:
        raise InputError(None, "retention", "at least 1 version", str(retention))
    base = enclave_history_dir(layout, path)
    if not base.is_dir() or base.is_symlink():
        return []
    removed = [base / name for name in _version_names(base)[retention:]]
    for old in removed:
        remove_tree(old)
    return removed


def version_problem(version: HistoryVersion, identity_ca: x509.Certificate, now: _dt.datetime,
                    layout: KeystoreLayout) -> str | None:
    """Why ``version`` cannot be restored now (expired, foreign CA, revoked, key mismatch), or None."""
    try:
        cert = _certificate(layout, version.directory)
        key = pki.load_private_key(read_keystore_file(layout, version.directory / KEY), None,
                                   version.directory / KEY)
        read_keystore_file(layout, version.directory / PERMISSIONS_XML)
        read_keystore_file(layout, version.directory / PERMISSIONS_P7S)
    except KeystoreError as exc:
        return f"unreadable: {exc}"
    if not cert.not_valid_before_utc <= now < cert.not_valid_after_utc:
        return f"certificate not valid now (valid {cert.not_valid_before_utc.isoformat()} to " \
               f"{cert.not_valid_after_utc.isoformat()})"
    try:
        cert.verify_directly_issued_by(identity_ca)
    except (ValueError, TypeError, InvalidSignature):
        return "certificate is not issued by the current identity CA"
    try:
        crl = parse_crl(read_keystore_file(layout, layout.crl), layout.crl) if os.path.lexists(layout.crl) else None
    except KeystoreError:
        crl = None
    if is_revoked(crl, cert):
        return "certificate serial is revoked in public/crl.pem"
    if not pki.key_matches_certificate(key, cert):
        return "key.pem does not belong to cert.pem"
    return None


def choose_version(layout: KeystoreLayout, path: str, now: _dt.datetime, identity_ca: x509.Certificate,
                   version: str | None = None) -> HistoryVersion:
    """The given version, or the newest one restorable now.

    :raises KeystoreError: no such version, or none restorable (each reason named).
    """
    versions = list_history(layout, path)
    if version is not None:
        versions = [v for v in versions if v.version == version]
        if not versions:
            known = ", ".join(v.version for v in list_history(layout, path)) or "none"
            raise KeystoreError(enclave_history_dir(layout, path), f"version {version}: expected one of {known}")
    reasons = []
    for candidate in versions:
        problem = version_problem(candidate, identity_ca, now, layout)
        if problem is None:
            return candidate
        reasons.append(f"{candidate.version}: {problem}")
    raise KeystoreError(enclave_history_dir(layout, path),
                        f"enclave {path}: expected a restorable version, got "
                        + ("; ".join(reasons) if reasons else "no history"))



