"""Versioned history of enclave directories: snapshot before a change, roll back, repair a crash.

Each version is a copy of one enclave's own files (regular files byte for byte with their modes,
symlinks re-created as links; nested enclaves are not part of it) under::

    <root>/.cobot_security/history/<enclave path, '/' → '~'>/<UTC timestamp>-<serial>/

A snapshot is written into a hidden staging directory and renamed into place, so a version is
either complete or absent (certbot's archive, made atomic).  Rollback builds the restored enclave
in a staged directory beside the live one and exchanges the two in one ``renameat2`` call.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from cobot_security import atomic
from cobot_security.errors import InputError, KeystoreError
from cobot_security.keystore import pki, smime
from cobot_security.keystore.integrity import write_integrity_manifest
from cobot_security.keystore.layout import CERT, KEY, PERMISSIONS_P7S, PERMISSIONS_XML, KeystoreLayout

#: Versions kept per enclave unless the caller asks otherwise.
DEFAULT_RETENTION = 5
_STAGING_MARK = ".staging-"

if TYPE_CHECKING:
    from cobot_security.keystore.store import Keystore
_DIR_MODE = 0o755


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


def _copy_entry(source: Path, target: Path) -> None:
    """Copy one regular file (same mode, from creation) or re-create one symlink."""
    st = source.lstat()
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(source), target)
    elif stat.S_ISREG(st.st_mode):
        atomic.write_bytes_atomic(target, source.read_bytes(), stat.S_IMODE(st.st_mode))


def _copy_enclave_files(source: Path, target: Path) -> None:
    for entry in sorted(source.iterdir()):
        if entry.name.startswith(".") or (entry.is_dir() and not entry.is_symlink()):
            continue  # nested enclaves and our temporaries are not part of this enclave
        _copy_entry(entry, target / entry.name)


def snapshot_enclave(layout: KeystoreLayout, path: str, now: _dt.datetime,
                     retention: int = DEFAULT_RETENTION, *, prune: bool = True) -> HistoryVersion | None:
    """Archive the current files of enclave ``path``; None when it has no certificate yet.

    Call it holding the keystore lock.  Versions beyond ``retention`` (oldest first) are pruned.

    :raises KeystoreError: the disk refuses, or the certificate cannot be read.
    :raises InputError: ``retention`` below 1.
    """
    if retention < 1:
        raise InputError(None, "retention", "at least 1 version", str(retention))
    directory = layout.enclave_dir(path)
    if not (directory / CERT).is_file():
        return None
    cert = pki.load_certificate((directory / CERT).read_bytes(), directory / CERT)
    base = enclave_history_dir(layout, path)
    name = f"{_stamp(now)}-{cert.serial_number:x}"
    try:
        for parent in (layout.meta_dir, layout.history_dir, base):
            atomic.make_private_dir(parent)
        final, counter = base / name, 1
        while os.path.lexists(final):
            final, counter = base / f"{name}-{counter}", counter + 1
        with atomic.staged_dir(base, final.name, 0o700) as staged:
            _copy_enclave_files(directory, staged)
            os.rename(staged, final)
        if prune:
            prune_history(layout, path, retention)
    except OSError as exc:
        raise KeystoreError(exc.filename or base, f"cannot archive enclave {path}: {exc.strerror or exc}") from exc
    return _version(path, final)


def _version(path: str, directory: Path) -> HistoryVersion:
    cert = pki.load_certificate((directory / CERT).read_bytes(), directory / CERT)
    return HistoryVersion(path, directory.name, directory, format(cert.serial_number, "x"),
                          cert.not_valid_before_utc, cert.not_valid_after_utc)


def list_history(layout: KeystoreLayout, path: str) -> list[HistoryVersion]:
    """Archived versions of enclave ``path``, newest first (staging leftovers are ignored).

    :raises InvalidNameError: the enclave path is unsafe.
    :raises KeystoreError: an archived certificate cannot be parsed.
    """
    base = enclave_history_dir(layout, path)
    if not base.is_dir():
        return []
    names = sorted((d.name for d in base.iterdir() if d.is_dir() and not d.name.startswith(".")), reverse=True)
    return [_version(path, base / name) for name in names if (base / name / CERT).is_file()]


def prune_history(layout: KeystoreLayout, path: str, retention: int = DEFAULT_RETENTION) -> list[Path]:
    """Delete the oldest versions of ``path`` beyond ``retention``; return what was removed."""
    base = enclave_history_dir(layout, path)
    if not base.is_dir():
        return []
    names = sorted((d.name for d in base.iterdir() if d.is_dir() and not d.name.startswith(".")), reverse=True)
    removed = [base / name for name in names[retention:]]
    for old in removed:
        shutil.rmtree(old)
    return removed


def _adopt_nested(old: Path, new: Path) -> None:
    """Move nested enclave directories of ``old`` into ``new`` where ``new`` lacks them."""
    for child in sorted(old.iterdir()):
        if child.is_dir() and not child.is_symlink() and not child.name.startswith("."):
            if not os.path.lexists(new / child.name):
                os.rename(child, new / child.name)


def recover(layout: KeystoreLayout) -> list[Path]:
    """Repair what an interrupted rotation or rollback left behind; return the paths removed.

    * half-written history versions (hidden staging directories) are deleted;
    * staged enclave directories are deleted: one killed before its swap holds only the new files
      that never went live; one killed after the swap holds the OLD tree, whose nested enclaves
      are first moved back into the live directory.

    Call it holding the keystore lock (rotation does).  Every live enclave directory is already
    fully old or fully new, because each one is switched in with a single rename.
    """
    removed: list[Path] = []
    for top in (layout.history_dir, layout.enclaves_dir):
        if not top.is_dir():
            continue
        for current, dirs, _files in os.walk(top, followlinks=False):
            here = Path(current)
            for name in sorted(dirs):
                if not (name.startswith(".") and _STAGING_MARK in name):
                    continue
                staged = here / name
                live = here / name[1:].split(_STAGING_MARK, 1)[0]
                if top == layout.enclaves_dir and live.is_dir():
                    _adopt_nested(staged, live)
                shutil.rmtree(staged, ignore_errors=True)
                removed.append(staged)
            dirs[:] = [d for d in dirs if not d.startswith(".")]
    return removed


def _load(path: Path) -> x509.Certificate:
    return pki.load_certificate(path.read_bytes(), path)


def _revoked(layout: KeystoreLayout, cert: x509.Certificate) -> bool:
    crl_path = layout.public_dir / "crl.pem"
    try:
        crl = x509.load_pem_x509_crl(crl_path.read_bytes())
    except (OSError, ValueError):
        return False
    return crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None


def version_problem(version: HistoryVersion, identity_ca: x509.Certificate, now: _dt.datetime,
                    layout: KeystoreLayout | None = None) -> str | None:
    """Why ``version`` cannot be restored now (expired, foreign CA, revoked, key mismatch), or None."""
    try:
        cert = _load(version.directory / CERT)
        key = pki.load_private_key((version.directory / KEY).read_bytes(), None, version.directory / KEY)
    except (OSError, KeystoreError) as exc:
        return f"unreadable: {exc}"
    if not cert.not_valid_before_utc <= now < cert.not_valid_after_utc:
        return f"certificate not valid now (valid {cert.not_valid_before_utc.isoformat()} to " \
               f"{cert.not_valid_after_utc.isoformat()})"
    try:
        cert.verify_directly_issued_by(identity_ca)
    except (ValueError, TypeError, InvalidSignature):
        return "certificate is not issued by the current identity CA"
    if layout is not None and _revoked(layout, cert):
        return "certificate serial is revoked in public/crl.pem"
    if not pki.key_matches_certificate(key, cert):
        return "key.pem does not belong to cert.pem"
    if not (version.directory / PERMISSIONS_XML).is_file():
        return "permissions.xml missing"
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


#: The files that make up an enclave's identity and grant; everything else (links to the CAs,
#: governance and the CRL) is taken from the live directory so a rollback never revives an old CRL.
IDENTITY_FILES: tuple[str, ...] = (CERT, KEY, PERMISSIONS_XML, PERMISSIONS_P7S)


def build_restored(version: HistoryVersion, live: Path, staged: Path, permissions_ca: x509.Certificate,
                   permissions_key: pki.PrivateKey, permissions_ca_path: Path, now: _dt.datetime) -> None:
    """Copy ``version``'s identity into ``staged`` and the rest from ``live``; re-sign if needed.

    A renewed permissions CA has a new serial, and the DDS plugin finds the signer by issuer and
    serial, so an older signature would no longer verify: the same grant is signed again.
    """
    for name in IDENTITY_FILES:
        _copy_entry(version.directory / name, staged / name)
    source = live if live.is_dir() else version.directory
    for entry in sorted(source.iterdir()):
        if entry.name in IDENTITY_FILES or entry.name.startswith(".") or \
                (entry.is_dir() and not entry.is_symlink()):
            continue
        _copy_entry(entry, staged / entry.name)
    p7s = staged / PERMISSIONS_P7S
    try:
        smime.verify_smime(p7s.read_bytes(), permissions_ca_path, at=now, source=p7s)
    except (OSError, KeystoreError):
        xml = (staged / PERMISSIONS_XML).read_bytes()
        atomic.write_bytes_atomic(p7s, smime.sign_smime(xml, permissions_ca, permissions_key), 0o644)


def update_manifest_entry(layout: KeystoreLayout, manifest: Mapping[str, object], path: str,
                          cert: x509.Certificate) -> None:
    """Record ``cert`` as enclave ``path``'s current certificate (policy digest kept)."""
    data = dict(manifest) if manifest else {"version": 1}
    entries = dict(data.get("enclaves") or {})  # type: ignore[call-overload]
    entry = dict(entries.get(path) or {})
    entry["serial"] = format(cert.serial_number, "x")
    entry["not_after"] = cert.not_valid_after_utc.replace(microsecond=0).isoformat()
    entries[path] = entry
    data["enclaves"] = entries
    text = (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8")
    atomic.write_bytes_atomic(layout.manifest, text, 0o600)


def rollback_enclave(keystore: "Keystore", path: str, now: _dt.datetime, version: str | None = None,
                     *, retention: int = DEFAULT_RETENTION) -> HistoryVersion:
    """Restore the newest (or the given) still-valid version of enclave ``path``; return it.

    The live version is archived first (a rollback can itself be rolled back), the restored tree
    is staged and exchanged in one rename, then the manifest, the signed integrity manifest and
    the audit log are updated.

    :raises KeystoreError: no restorable version, or the disk refuses.
    :raises PassphraseError: the CA keys cannot be decrypted.
    :raises LockError: another process holds the keystore lock.
    """
    from cobot_security.keystore.ca import audit_event, load_ca_pairs

    layout = keystore.layout
    directory = layout.enclave_dir(path)
    identity, permissions = load_ca_pairs(keystore)
    with atomic.KeystoreLock(layout.lock, keystore_lock_timeout(keystore)):
        chosen = choose_version(layout, path, now, identity.cert, version)
        current_serial = None
        if (directory / CERT).is_file():
            current_serial = format(_load(directory / CERT).serial_number, "x")
        try:
            with atomic.staged_dir(directory.parent, directory.name, _DIR_MODE) as staged:
                build_restored(chosen, directory, staged, permissions.cert, permissions.key,
                               layout.permissions_ca_cert, now)
                # Archived unpruned: pruning now could delete the version being restored.
                snapshot_enclave(layout, path, now, retention, prune=False)
                old = atomic.swap_into_place(staged, directory)
            if old is not None:
                _adopt_nested(old, directory)
                shutil.rmtree(old)
            prune_history(layout, path, retention)
            restored = _load(directory / CERT)
            update_manifest_entry(layout, keystore.manifest(), path, restored)
            audit_event(layout, "rollback", path, {
                "version": chosen.version,
                "from_serial": current_serial or "",
                "to_serial": format(restored.serial_number, "x"),
            }, now)
            write_integrity_manifest(layout, permissions.cert, permissions.key, now)
        except OSError as exc:
            raise KeystoreError(exc.filename or directory, f"cannot roll back enclave {path}: "
                                f"{exc.strerror or exc}") from exc
    return chosen


def keystore_lock_timeout(keystore: "Keystore") -> float:
    """The lock timeout the keystore was opened with (30 s when unknown)."""
    return keystore.lock_timeout_s
