"""Enclave rotation: a pure due-decision, then archive → switch → audit, with crash repair.

:func:`plan_rotation` compares the policy (desired state) with the keystore (actual state) and
returns what to rotate and why; it writes nothing.  :func:`rotate_enclaves` executes a plan one
enclave at a time: archive the live version into the history, issue a new key, certificate and
signed permissions in a staged directory and exchange it with the live one in one rename
(:meth:`Keystore.create_enclave` with ``force``), then append an audit record.  A failure stops
the run; each enclave is then fully old or fully new, never a mixture.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cobot_security import atomic
from cobot_security.clock import days_left, iso_utc
from cobot_security.errors import CobotSecurityError, InputError, KeystoreError
from cobot_security.keystore import pki
from cobot_security.keystore.ca import audit_event, load_ca_pairs
from cobot_security.keystore.history import DEFAULT_RETENTION, recover, snapshot_enclave
from cobot_security.keystore.layout import CERT, KeystoreLayout
from cobot_security.keystore.store import Keystore, enclave_policy_digest
from cobot_security.policy.model import WorkcellPolicy

REASONS: tuple[str, ...] = ("due", "requested", "missing", "policy_changed")


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


def _manifest_digests(layout: KeystoreLayout) -> dict[str, str]:
    import json

    try:
        data = json.loads(layout.manifest.read_bytes())
    except (OSError, ValueError):
        return {}
    entries = data.get("enclaves") if isinstance(data, dict) else None
    if not isinstance(entries, dict):
        return {}
    return {k: v["policy_sha256"] for k, v in entries.items()
            if isinstance(v, dict) and isinstance(v.get("policy_sha256"), str)}


def plan_rotation(
    keystore: Keystore | KeystoreLayout,
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
    * default (reconcile): due, missing and policy_changed (manifest digest differs).

    Enclaves the keystore holds but the policy no longer names are never rotated (revoke them).

    :raises InputError: a requested enclave the policy does not name, or conflicting selectors.
    :raises KeystoreError: a certificate cannot be parsed.
    """
    layout = keystore.layout if isinstance(keystore, Keystore) else keystore
    requested = list(dict.fromkeys(enclaves or ()))
    if sum((bool(requested), due_only, all)) > 1:
        raise InputError(None, "selection", "one of --enclave, --due, --all", "several")
    for path in requested:
        if policy.enclave(path) is None:
            raise InputError(policy.source, "enclaves", f"an entry for enclave {path} in the policy", "none")
    digests = _manifest_digests(layout)
    chosen = [policy.enclave(p) for p in requested] if requested else list(policy.enclaves)
    items: list[RotationItem] = []
    for enclave in chosen:
        assert enclave is not None
        cert_path = layout.enclave_file(enclave.path, CERT)
        if not cert_path.is_file():
            if not due_only:
                items.append(RotationItem(enclave.path, "missing", None, None))
            continue
        cert = pki.load_certificate(cert_path.read_bytes(), cert_path)
        not_after = cert.not_valid_after_utc
        days = days_left(not_after, now)
        if requested or all:
            items.append(RotationItem(enclave.path, "requested", not_after, days))
        elif is_due(not_after, policy.lifetimes.renew_before, now):
            items.append(RotationItem(enclave.path, "due", not_after, days))
        elif not due_only and enclave.path in digests and digests[enclave.path] != enclave_policy_digest(enclave):
            items.append(RotationItem(enclave.path, "policy_changed", not_after, days))
    return items


def rotation_lock(layout: KeystoreLayout, timeout_s: float = 30.0) -> atomic.KeystoreLock:
    """The lock held for a whole rotation run (each step also takes the keystore lock briefly)."""
    return atomic.KeystoreLock(layout.rotation_lock, timeout_s)


def rotate_enclaves(
    keystore: Keystore,
    policy: WorkcellPolicy,
    items: Iterable[RotationItem],
    now: _dt.datetime,
    *,
    retention: int = DEFAULT_RETENTION,
    lock_timeout_s: float | None = None,
) -> list[RotationResult]:
    """Rotate each planned enclave: archive, re-issue in a staged dir, swap in, audit.

    A second rotation waits for the first up to the lock timeout.  Leftovers of an interrupted
    earlier run are repaired first (:func:`recover`).

    :raises RotationFailed: one enclave failed; earlier ones are rotated, it and later ones are not.
    :raises LockError: another rotation (or keystore change) holds the lock past the timeout.
    :raises PassphraseError: the CA keys cannot be decrypted (before anything is written).
    """
    layout = keystore.layout
    timeout = keystore.lock_timeout_s if lock_timeout_s is None else lock_timeout_s
    plan = list(items)
    for item in plan:
        if policy.enclave(item.enclave) is None:
            raise InputError(policy.source, "enclaves", f"an entry for enclave {item.enclave}", "none")
    done: list[RotationResult] = []
    if plan:
        load_ca_pairs(keystore)  # a wrong passphrase fails here, before anything is written
    atomic.make_private_dir(layout.meta_dir)
    # One batch: the signed integrity manifest is written once at the end (also when an enclave
    # fails), instead of re-hashing the whole keystore after every enclave (quadratic).
    with rotation_lock(layout, timeout), keystore.batch():
        with atomic.KeystoreLock(layout.lock, timeout):
            recover(layout)
        for item in plan:
            enclave = policy.enclave(item.enclave)
            assert enclave is not None
            try:
                with atomic.KeystoreLock(layout.lock, timeout):
                    archived = snapshot_enclave(layout, item.enclave, now, retention)
                info = keystore.create_enclave(enclave, policy, now, force=True)
                with atomic.KeystoreLock(layout.lock, timeout):
                    audit_event(layout, "rotate", item.enclave, {
                        "reason": item.reason,
                        "old_serial": archived.serial if archived else "",
                        "new_serial": info.serial,
                        "not_after": iso_utc(info.not_after),
                    }, now)
            except CobotSecurityError as exc:
                raise RotationFailed(layout.enclave_dir(item.enclave), item.enclave, tuple(done), str(exc)) from exc
            except OSError as exc:
                raise RotationFailed(layout.enclave_dir(item.enclave), item.enclave, tuple(done),
                                     exc.strerror or str(exc)) from exc
            done.append(RotationResult(item.enclave, item.reason, archived.serial if archived else None,
                                       info.serial, info.not_after, archived.version if archived else None))
    return done
