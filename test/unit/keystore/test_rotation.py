"""rotation: the due decision at its boundary, plans, one-enclave isolation, failure atomicity, lock."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from cobot_security import atomic
from cobot_security.errors import InputError, LockError, PassphraseError
from cobot_security.keystore.history import list_history
from cobot_security.keystore.layout import KeystoreLayout
from cobot_security.keystore.rotation import (
    RotationFailed,
    RotationItem,
    is_due,
    plan_rotation,
    rotate_enclaves,
)
from cobot_security.keystore.smime import verify_smime
from cobot_security.keystore.store import Keystore, init_keystore
from cobot_security.policy.model import NodeGrants, WorkcellPolicy

PolicyFactory = Callable[..., WorkcellPolicy]
PATHS = ("/cell/arm", "/cell", "/gripper")


def enclave_digest(directory: Path) -> dict[str, str]:
    """The enclave's own entries (not nested enclaves): mode + content hash or link target."""
    out = {}
    for entry in sorted(directory.iterdir()):
        if entry.is_dir() and not entry.is_symlink():
            continue
        st = entry.lstat()
        out[entry.name] = ("l " + os.readlink(entry)) if entry.is_symlink() else \
            f"{stat.S_IMODE(st.st_mode):o} " + hashlib.sha256(entry.read_bytes()).hexdigest()
    return out


def assert_enclave_consistent(layout: KeystoreLayout, path: str) -> None:
    """Key matches cert, permissions verify against the permissions CA, grant subject = cert subject."""
    directory = layout.enclave_dir(path)
    cert = x509.load_pem_x509_certificate((directory / "cert.pem").read_bytes())
    key = serialization.load_pem_private_key((directory / "key.pem").read_bytes(), None)
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()
    signed = verify_smime((directory / "permissions.p7s").read_bytes(), layout.permissions_ca_cert,
                          at=cert.not_valid_before_utc + dt.timedelta(hours=2))
    assert f"<subject_name>{cert.subject.rfc4514_string()}</subject_name>".encode() in signed
    assert signed.rstrip(b"\n") == (directory / "permissions.xml").read_bytes().rstrip(b"\n")
    assert stat.S_IMODE((directory / "key.pem").stat().st_mode) == 0o600


@pytest.fixture
def cell(tmp_path: Path, policy_factory: PolicyFactory, fixed_now: dt.datetime) -> tuple[Keystore, WorkcellPolicy]:
    policy = policy_factory(*PATHS)
    return init_keystore(tmp_path / "ks", policy, fixed_now), policy


@pytest.mark.parametrize(("offset", "due"), [(-1, False), (0, True), (1, True)])
def test_due_boundary_is_inclusive(fixed_now: dt.datetime, offset: int, due: bool) -> None:
    not_after = fixed_now + dt.timedelta(days=30)
    assert is_due(not_after, dt.timedelta(days=30), fixed_now + dt.timedelta(seconds=offset)) is due


def test_plan_default_is_empty_for_a_fresh_keystore(cell: tuple[Keystore, WorkcellPolicy],
                                                     fixed_now: dt.datetime) -> None:
    keystore, policy = cell
    assert plan_rotation(keystore, policy, fixed_now) == []
    assert plan_rotation(keystore, policy, fixed_now, due_only=True) == []


def test_plan_due_just_before_at_and_after_the_window(cell: tuple[Keystore, WorkcellPolicy],
                                                       fixed_now: dt.datetime) -> None:
    keystore, policy = cell
    # Certificates end at now + 90 d; renew_before is 30 d: due from now + 60 d.
    window = fixed_now + dt.timedelta(days=60)
    assert plan_rotation(keystore, policy, window - dt.timedelta(seconds=1), due_only=True) == []
    at = plan_rotation(keystore, policy, window, due_only=True)
    assert [(i.enclave, i.reason, i.days_left) for i in at] == [(p, "due", 30) for p in PATHS]
    assert len(plan_rotation(keystore, policy, window + dt.timedelta(seconds=1))) == 3


def test_plan_missing_requested_all_and_policy_changed(cell: tuple[Keystore, WorkcellPolicy],
                                                        fixed_now: dt.datetime) -> None:
    keystore, policy = cell
    for name in ("cert.pem", "key.pem"):
        (keystore.layout.enclave_dir("/gripper") / name).unlink()
    changed = dataclasses.replace(policy.enclaves[0], nodes=(NodeGrants("arm", "/cell", publish=("other",)),))
    edited = dataclasses.replace(policy, enclaves=(changed,) + policy.enclaves[1:])
    plan = plan_rotation(keystore, edited, fixed_now)
    assert [(i.enclave, i.reason) for i in plan] == [("/cell/arm", "policy_changed"), ("/gripper", "missing")]
    assert plan[1].not_after is None and plan[1].days_left is None
    assert plan_rotation(keystore, edited, fixed_now, due_only=True) == []
    requested = plan_rotation(keystore, policy, fixed_now, enclaves=["/cell"])
    assert [(i.enclave, i.reason) for i in requested] == [("/cell", "requested")]
    assert [i.reason for i in plan_rotation(keystore, policy, fixed_now, all=True)] == \
        ["requested", "requested", "missing"]


def test_plan_rejects_unknown_enclave_and_two_selectors(cell: tuple[Keystore, WorkcellPolicy],
                                                         fixed_now: dt.datetime) -> None:
    keystore, policy = cell
    with pytest.raises(InputError, match="enclave /nope"):
        plan_rotation(keystore, policy, fixed_now, enclaves=["/nope"])
    with pytest.raises(InputError, match="one of --enclave, --due, --all"):
        plan_rotation(keystore, policy, fixed_now, due_only=True, all=True)


def test_rotating_one_enclave_changes_no_other_enclave(cell: tuple[Keystore, WorkcellPolicy],
                                                       fixed_now: dt.datetime) -> None:
    keystore, policy = cell
    layout = keystore.layout
    before = {p: enclave_digest(layout.enclave_dir(p)) for p in PATHS}
    shared = {p: p.read_bytes() for p in (layout.identity_ca_cert, layout.permissions_ca_cert, layout.governance_p7s)}
    results = rotate_enclaves(keystore, policy, plan_rotation(keystore, policy, fixed_now, enclaves=["/cell"]),
                              fixed_now)
    after = {p: enclave_digest(layout.enclave_dir(p)) for p in PATHS}
    assert after["/cell/arm"] == before["/cell/arm"] and after["/gripper"] == before["/gripper"]
    assert after["/cell"]["cert.pem"] != before["/cell"]["cert.pem"]
    assert after["/cell"]["key.pem"] != before["/cell"]["key.pem"]
    assert {p: p.read_bytes() for p in shared} == shared
    assert [r.enclave for r in results] == ["/cell"] and results[0].old_serial != results[0].new_serial
    assert_enclave_consistent(layout, "/cell")
    assert (layout.enclave_dir("/cell") / "arm" / "cert.pem").is_file()  # nested enclave kept
    versions = list_history(layout, "/cell")
    assert [v.serial for v in versions] == [results[0].old_serial]
    assert stat.S_IMODE((versions[0].directory / "key.pem").stat().st_mode) == 0o600
    manifest = json.loads(layout.manifest.read_text())
    assert manifest["enclaves"]["/cell"]["serial"] == results[0].new_serial


def test_rotation_is_audited(cell: tuple[Keystore, WorkcellPolicy], fixed_now: dt.datetime) -> None:
    keystore, policy = cell
    rotate_enclaves(keystore, policy, [RotationItem("/gripper", "requested", None, None)], fixed_now)
    records = [json.loads(line) for line in (keystore.layout.meta_dir / "audit.log").read_text().splitlines()]
    rotate = [r for r in records if r["event"] == "rotate"]
    assert len(rotate) == 1 and rotate[0]["subject"] == "/gripper" and rotate[0]["details"]["reason"] == "requested"


def test_failure_mid_rotation_leaves_each_enclave_old_or_new(
    cell: tuple[Keystore, WorkcellPolicy], fixed_now: dt.datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    keystore, policy = cell
    layout = keystore.layout
    before = {p: enclave_digest(layout.enclave_dir(p)) for p in PATHS}
    real_swap = atomic.swap_into_place
    calls = []

    def failing_swap(staged: Path, target: Path, *, durable: bool = True) -> Path | None:
        calls.append(target)
        if len(calls) == 2:  # the second enclave: its staged dir is fully built, then the disk fails
            assert (staged / "cert.pem").is_file() and (staged / "permissions.p7s").is_file()
            raise OSError(28, "No space left on device", str(target))
        return real_swap(staged, target, durable=durable)

    monkeypatch.setattr(atomic, "swap_into_place", failing_swap)
    with pytest.raises(RotationFailed, match="rotation stopped at enclave /cell after 1 rotated") as info:
        rotate_enclaves(keystore, policy, plan_rotation(keystore, policy, fixed_now, all=True), fixed_now)
    assert [r.enclave for r in info.value.completed] == ["/cell/arm"]
    after = {p: enclave_digest(layout.enclave_dir(p)) for p in PATHS}
    assert after["/cell/arm"]["cert.pem"] != before["/cell/arm"]["cert.pem"]  # fully new
    assert after["/cell"] == before["/cell"] and after["/gripper"] == before["/gripper"]  # fully old
    for path in PATHS:
        assert_enclave_consistent(layout, path)
    leftovers = [n for n in os.listdir(layout.enclaves_dir) if ".staging-" in n]
    assert leftovers == []


def test_second_rotation_gets_lock_error(cell: tuple[Keystore, WorkcellPolicy], fixed_now: dt.datetime) -> None:
    keystore, policy = cell
    other = Keystore.open(keystore.layout.root, lock_timeout_s=0.2)
    with atomic.KeystoreLock(keystore.layout.lock):
        with pytest.raises(LockError, match="holds the keystore lock"):
            rotate_enclaves(other, policy, [RotationItem("/gripper", "requested", None, None)], fixed_now)
    assert list_history(keystore.layout, "/gripper") == []


def test_wrong_passphrase_fails_before_any_write(tmp_path: Path, policy_factory: PolicyFactory,
                                                 fixed_now: dt.datetime) -> None:
    policy = policy_factory(*PATHS)
    init_keystore(tmp_path / "ks", policy, fixed_now, passphrase=b"right")
    keystore = Keystore.open(tmp_path / "ks", passphrase=b"wrong")
    before = enclave_digest(keystore.layout.enclave_dir("/gripper"))
    with pytest.raises(PassphraseError, match="passphrase"):
        rotate_enclaves(keystore, policy, [RotationItem("/gripper", "requested", None, None)], fixed_now)
    assert enclave_digest(keystore.layout.enclave_dir("/gripper")) == before
    assert list_history(keystore.layout, "/gripper") == []
