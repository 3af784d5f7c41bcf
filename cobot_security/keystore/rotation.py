"""Enclave rotation: a pure due-decision, then one keystore transaction that re-issues and switches.

:func:`plan_rotation` compares the policy (desired state) with the keystore (actual state) and
returns what to rotate and why; it writes nothing.  :func:`rotate_enclaves` executes a plan in one
:class:`~cobot_security.keystore.transaction.KeystoreTransaction`: every planned enclave is
re-issued (new key, certificate and signed permissions; a large batch in worker processes, see
:mod:`~cobot_security.keystore.issuing`) into a staged directory, the batch is
made durable with one sync, each staged directory is exchanged with the live one in one rename
and the replaced version moved into the history; the manifest, audit records and signed
integrity manifest are written once.  A failure stops the run; each enclave is then fully old or
fully new, never a mixture, and those before the failure are kept.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass
from pathlib import Path

from cobot_security.clock import days_left, iso_utc
from cobot_security.errors import CobotSecurityError, InputError, KeystoreError
from cobot_security.keystore import pki, smime
from cobot_security.keystore.audit import AuditEvent
from cobot_security.keystore.enclaves import (
    EnclaveMaterial,
    write_layout_links,
    write_material,
)
from cobot_security.keystore.files import read_keystore_file
from cobot_security.keystore.history import DEFAULT_RETENTION
from cobot_security.keystore.issuing import issue_materials
from cobot_security.keystore.layout import CERT, KEY, PERMISSIONS_P7S, PERMISSIONS_XML
from cobot_security.keystore.manifest import EnclaveRecord, grant_changed
from cobot_security.keystore.store import Keystore
from cobot_security.keystore.transaction import (
    KeystoreTransaction,
    StagedEnclave,
    SwapFailed,
)
from cobot_security.policy.model import WorkcellPolicy
from cobot_security.policy.permissions import compile_permissions, grant_digest

REASONS: tuple[str, ...] = ("due", "requested", "missing", "policy_changed", "unreadable")


@dataclass(frozen=True)
class RotationItem:
    """One enclave to rotate and why; ``not_after`` and ``days_left`` are None when it is missing."""

    enclave: str
    reason: str
    not_after: _dt.datetime | None
    days_left: int | None


@dataclass(frozen=True)
class RotationResult:
    """One enclave rotated: the archived version and the new certificate."""

    enclave: str
    reason: str
    old_serial: str | None
    new_serial: str
    not_after: _dt.datetime
    archived: str | None  #: history version name of the previous files


class RotationFailed(KeystoreError):
    """A rotation run stopped at one enclave; ``completed`` were rotated before it (exit 1)."""

    exit_code = 1

    def __init__(self, path: Path, enclave: str, completed: tuple[RotationResult, ...], cause: str) -> None:
        self.enclave = enclave
        self.completed = completed
        super().__init__(path, f"rotation stopped at enclave {enclave} after {len(completed)} rotated "
                               f"(each enclave is fully old or fully new): {cause}")


def is_due(not_after: _dt.datetime, renew_before: _dt.timedelta, now: _dt.datetime) -> bool:
    """Due from ``not_after - renew_before`` on (inclusive), like cert-manager's renewBefore."""
    return now >= not_after - renew_before


def plan_rotation(
    keystore: Keystore,
    policy: WorkcellPolicy,
    now: _dt.datetime,
    *,
    enclaves: Iterable[str] | None = None,
    due_only: bool = False,
    all: bool = False,  # noqa: A002  (the CLI word)
) -> list[RotationItem]:
    """What to rotate now, in policy order; reads the keystore, writes nothing.

    * ``enclaves``: exactly these ("requested"; "missing" when not issued yet);
    * ``all``: every policy enclave;
    * ``due_only``: enclaves inside their renew window (``now >= not_after - renew_before``);
    * default (reconcile): due, missing and policy_changed (:func:`grant_changed`).

    An enclave whose certificate cannot be read (corrupt, a planted link, a foreign owner) is
    planned as "unreadable" (re-issuing it is the remedy) instead of stopping the plan.  Enclaves
    the keystore holds but the policy no longer names are never rotated (revoke them).

    :raises InputError: a requested enclave the policy does not name, or conflicting selectors.
    """
    layout = keystore.layout
    requested = list(dict.fromkeys(enclaves or ()))
    if sum((bool(requested), due_only, all)) > 1:
        raise InputError(None, "selection", "one of --enclave, --due, --all", "several")
    for path in requested:
        if policy.enclave(path) is None:
            raise InputError(policy.source, "enclaves", f"an entry for enclave {path} in the policy", "none")
    manifest = keystore.manifest()
    chosen = [policy.enclave(p) for p in requested] if requested else list(policy.enclaves)
    items: list[RotationItem] = []
    for enclave in chosen:
        assert enclave is not None
        cert_path = layout.enclave_file(enclave.path, CERT)
        if not os.path.lexists(cert_path):
            if not due_only:
                items.append(RotationItem(enclave.path, "missing", None, None))
            continue
        try:
            cert = pki.load_certificate(read_keystore_file(layout, cert_path), cert_path)
        except KeystoreError:
            items.append(RotationItem(enclave.path, "unreadable", None, None))
            continue
        not_after = cert.not_valid_after_utc
        days = days_left(not_after, now)
        if requested or all:
            items.append(RotationItem(enclave.path, "requested", not_after, days))
        elif is_due(not_after, policy.lifetimes.renew_before, now):
            items.append(RotationItem(enclave.path, "due", not_after, days))
        elif not due_only and grant_changed(layout, manifest, policy, enclave):
            items.append(RotationItem(enclave.path, "policy_changed", not_after, days))
    return items


def _stage_one(tx: KeystoreTransaction, item: RotationItem, material: EnclaveMaterial) -> StagedEnclave:
    """Write the issued ``material`` into a staged directory of ``item``'s enclave, with its records."""
    staged = tx.stage_enclave(item.enclave, archive=True)
    try:
        write_material(staged.directory, material, link_crl=tx.layout.crl.exists())
    except OSError as exc:
        tx.discard(staged)
        raise KeystoreError(exc.filename or staged.target, exc.strerror or str(exc)) from exc
    except BaseException:
        tx.discard(staged)
        raise
    old_serial = staged.previous_serial = _current_serial(tx, item.enclave)
    staged.record = material.record()
    staged.events += [
        AuditEvent("issue", item.enclave, {**material.audit_details(), **({"replaced": "true"} if old_serial else {})}),
        AuditEvent("rotate", item.enclave, {"reason": item.reason, "old_serial": old_serial or "",
                                            "new_serial": material.serial, "not_after": iso_utc(material.not_after)}),
    ]
    return staged


def _current_serial(tx: KeystoreTransaction, path: str) -> str | None:
    cert_path = tx.layout.enclave_file(path, CERT)
    try:
        return format(pki.load_certificate(read_keystore_file(tx.layout, cert_path), cert_path).serial_number, "x")
    except (KeystoreError, FileNotFoundError):
        return None


def _result(item: RotationItem, staged: StagedEnclave) -> RotationResult:
    assert staged.record is not None
    return RotationResult(item.enclave, item.reason, staged.previous_serial, staged.record.serial,
                          staged.record.not_after, staged.archived)


def _stage_and_switch(keystore: Keystore, now: _dt.datetime, operation: str, paths: list[str],
                      stage: Callable[[KeystoreTransaction, str], StagedEnclave],
                      retention: int) -> tuple[list[StagedEnclave], tuple[str, str] | None]:
    """Stage each enclave in one transaction, stopping at the first failure, then switch the staged ones in.

    :returns: the staged enclaves (``swapped`` tells which went live) and the first failure as
        (enclave, reason), if any.
    """
    staged: list[StagedEnclave] = []
    failure: tuple[str, str] | None = None
    with keystore.transaction(now, operation, retention=retention) as tx:
        for path in paths:
            try:
                staged.append(stage(tx, path))
            except CobotSecurityError as exc:
                failure = (path, str(exc))
                break
        try:
            tx.swap_staged()
        except SwapFailed as exc:
            failure = (exc.enclave, exc.problem)
    return staged, failure


def rotate_enclaves(
    keystore: Keystore,
    policy: WorkcellPolicy,
    items: Iterable[RotationItem],
    now: _dt.datetime,
    *,
    retention: int = DEFAULT_RETENTION,
) -> list[RotationResult]:
    """Rotate each planned enclave in one keystore transaction (see the module docstring).

    A concurrent change waits for this one up to the keystore's lock timeout.  Leftovers of an
    interrupted earlier change are repaired first (the transaction does it).

    :raises RotationFailed: one enclave failed; earlier ones are rotated, it and later ones are not.
    :raises LockError: another keystore change holds the lock past the timeout.
    :raises PassphraseError: the CA keys cannot be decrypted (before anything is written).
    """
    plan = list(items)
    for item in plan:
        if policy.enclave(item.enclave) is None:
            raise InputError(policy.source, "enclaves", f"an entry for enclave {item.enclave}", "none")
    if not plan:
        return []
    by_path = {item.enclave: item for item in plan}
    materials: Generator[EnclaveMaterial, None, None] | None = None

    def stage(tx: KeystoreTransaction, path: str) -> StagedEnclave:
        # The whole batch is issued at the first call (in worker processes when it is large) and
        # each material is written into its staged directory here as it arrives, in plan order.
        nonlocal materials
        if materials is None:
            enclaves = [e for e in (policy.enclave(p) for p in by_path) if e is not None]  # all, checked above
            materials = issue_materials(enclaves, policy, now, tx.ca)
        return _stage_one(tx, by_path[path], next(materials))

    try:
        staged, failure = _stage_and_switch(keystore, now, "rotate", list(by_path), stage, retention)
    finally:
        if materials is not None:
            materials.close()  # reaps the workers, also after a failure
    done = tuple(_result(by_path[s.path], s) for s in staged if s.swapped)
    if failure is not None:
        path, cause = failure
        raise RotationFailed(keystore.layout.enclave_dir(path), path, done, cause)
    return list(done)


def _stage_resign(tx: KeystoreTransaction, policy: WorkcellPolicy, path: str) -> StagedEnclave:
    """Stage enclave ``path`` with its certificate and key kept and its grant compiled and signed anew."""
    enclave = policy.enclave(path)
    assert enclave is not None
    live = tx.layout.enclave_dir(path)
    cert_pem = read_keystore_file(tx.layout, live / CERT)
    key_pem = read_keystore_file(tx.layout, live / KEY)
    cert = pki.load_certificate(cert_pem, live / CERT)
    xml = compile_permissions(policy, enclave, cert.not_valid_before_utc, cert.not_valid_after_utc)
    staged = tx.stage_enclave(path, archive=True)
    try:
        tx.write_file(staged.directory / KEY, key_pem, 0o600)
        tx.write_file(staged.directory / CERT, cert_pem, 0o644)
        tx.write_file(staged.directory / PERMISSIONS_XML, xml, 0o644)
        tx.write_file(staged.directory / PERMISSIONS_P7S,
                      smime.sign_smime(xml, tx.ca.permissions.cert, tx.ca.permissions.key), 0o644)
        write_layout_links(staged.directory, path, link_crl=tx.layout.crl.exists())
    except OSError as exc:
        tx.discard(staged)
        raise KeystoreError(exc.filename or live, exc.strerror or str(exc)) from exc
    known = tx.manifest.enclaves.get(path)
    staged.record = EnclaveRecord(format(cert.serial_number, "x"), cert.not_valid_after_utc,
                                  grant_digest(policy, enclave), known.key_origin if known else "keystore")
    staged.events.append(AuditEvent("resign", path, {"serial": staged.record.serial,
                                                     "grant_sha256": staged.record.grant_sha256 or ""}))
    return staged


def resign_enclaves(keystore: Keystore, policy: WorkcellPolicy, paths: Iterable[str],
                    now: _dt.datetime) -> list[str]:
    """Sign each enclave's grant anew from ``policy`` keeping its key and certificate; one transaction.

    What ``reconcile`` does when only the policy entry changed: the identity stays, the nodes
    restart to load the new permissions.  The previous version is archived (rollback restores it).

    :raises RotationFailed: one enclave failed; earlier ones are re-signed, it and later ones are not.
    :raises LockError: another keystore change holds the lock past the timeout.
    :raises PassphraseError: the CA keys cannot be decrypted (before anything is written).
    """
    wanted = list(dict.fromkeys(paths))
    for path in wanted:
        if policy.enclave(path) is None:
            raise InputError(policy.source, "enclaves", f"an entry for enclave {path}", "none")
    if not wanted:
        return []
    staged, failure = _stage_and_switch(keystore, now, "resign", wanted,
                                        lambda tx, path: _stage_resign(tx, policy, path), DEFAULT_RETENTION)
    if failure is not None:
        raise RotationFailed(keystore.layout.enclave_dir(failure[0]), failure[0], (), failure[1])
    return [s.path for s in staged if s.swapped]
