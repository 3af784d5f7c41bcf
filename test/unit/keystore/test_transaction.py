"""The keystore transaction: one signed integrity manifest per change, also when the change fails midway."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest

from cobot_security import atomic
from cobot_security.errors import KeystoreError
from cobot_security.keystore import issuing as issuing_module
from cobot_security.keystore import rotation as rotation_module
from cobot_security.keystore import transaction as transaction_module
from cobot_security.keystore.enclaves import issue_material
from cobot_security.keystore.integrity import check_integrity
from cobot_security.keystore.rotation import (
    RotationFailed,
    plan_rotation,
    rotate_enclaves,
)
from cobot_security.keystore.store import Keystore, init_keystore
from cobot_security.policy.model import Enclave, WorkcellPolicy

PolicyFactory = Callable[..., WorkcellPolicy]
PATHS = ("/cell/arm", "/cell", "/gripper")


@pytest.fixture
def cell(tmp_path: Path, policy_factory: PolicyFactory, fixed_now: dt.datetime) -> tuple[Keystore, WorkcellPolicy]:
    policy = policy_factory(*PATHS)
    return init_keystore(tmp_path / "ks", policy, fixed_now), policy


@pytest.fixture
def manifest_writes(monkeypatch: pytest.MonkeyPatch) -> list[dt.datetime]:
    """Record the ``now`` of every integrity manifest the keystore writes (and still write it)."""
    real = transaction_module.write_integrity_manifest
    calls: list[dt.datetime] = []

    def counting(layout: object, cert: object, key: object, now: dt.datetime, *, durable: bool = True,
                 files: dict[str, str] | None = None) -> None:
        calls.append(now)
        real(layout, cert, key, now, durable=durable, files=files)  # type: ignore[arg-type]

    monkeypatch.setattr(transaction_module, "write_integrity_manifest", counting)
    return calls


def _cert(keystore: Keystore, path: str) -> bytes:
    return (keystore.layout.enclave_dir(path) / "cert.pem").read_bytes()


def test_batch_rotation_signs_the_manifest_once_and_it_verifies(
    cell: tuple[Keystore, WorkcellPolicy], fixed_now: dt.datetime, manifest_writes: list[dt.datetime]
) -> None:
    keystore, policy = cell
    later = fixed_now + dt.timedelta(minutes=5)
    results = rotate_enclaves(keystore, policy, plan_rotation(keystore, policy, later, all=True), later)
    assert [r.enclave for r in results] == list(PATHS)
    assert manifest_writes == [later]
    assert check_integrity(keystore.layout, at=later).ok


def test_create_enclave_outside_a_batch_still_signs_each_time(
    cell: tuple[Keystore, WorkcellPolicy], fixed_now: dt.datetime, manifest_writes: list[dt.datetime]
) -> None:
    keystore, policy = cell
    for path in PATHS[:2]:
        enclave = policy.enclave(path)
        assert enclave is not None
        keystore.create_enclave(enclave, policy, fixed_now, force=True)
        assert check_integrity(keystore.layout, at=fixed_now).ok
    assert len(manifest_writes) == 2


def _fail_create_on_second(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def failing(enclave: Enclave, policy: WorkcellPolicy, now: dt.datetime, ca: object) -> object:
        calls.append(enclave.path)
        if len(calls) == 2:
            raise KeystoreError(enclave.path, "injected failure")
        return issue_material(enclave, policy, now, ca)  # type: ignore[arg-type]

    monkeypatch.setattr(issuing_module, "issue_material", failing)


def _fail_swap_on_second(monkeypatch: pytest.MonkeyPatch) -> None:
    real = atomic.swap_into_place
    calls: list[Path] = []

    def failing(staged: Path, target: Path, *, durable: bool = True) -> Path | None:
        calls.append(target)
        if len(calls) == 2:  # inside create_enclave, after the staged enclave is fully written
            raise OSError(28, "No space left on device", str(target))
        return real(staged, target, durable=durable)

    monkeypatch.setattr(atomic, "swap_into_place", failing)


@pytest.mark.parametrize("inject", [_fail_create_on_second, _fail_swap_on_second], ids=["issue", "swap"])
def test_batch_failing_midway_still_leaves_a_verifying_manifest(
    cell: tuple[Keystore, WorkcellPolicy], fixed_now: dt.datetime, monkeypatch: pytest.MonkeyPatch,
    manifest_writes: list[dt.datetime], inject: Callable[[pytest.MonkeyPatch], None],
) -> None:
    keystore, policy = cell
    before = {p: _cert(keystore, p) for p in PATHS}
    later = fixed_now + dt.timedelta(minutes=5)
    inject(monkeypatch)
    with pytest.raises(RotationFailed, match="rotation stopped at enclave /cell after 1 rotated"):
        rotate_enclaves(keystore, policy, plan_rotation(keystore, policy, later, all=True), later)
    assert _cert(keystore, "/cell/arm") != before["/cell/arm"]  # swapped in before the failure
    assert _cert(keystore, "/cell") == before["/cell"] and _cert(keystore, "/gripper") == before["/gripper"]
    assert len(manifest_writes) == 1
    result = check_integrity(keystore.layout, at=later)
    assert result.ok, result


def test_a_transaction_signs_once_at_its_end(
    cell: tuple[Keystore, WorkcellPolicy], fixed_now: dt.datetime, manifest_writes: list[dt.datetime]
) -> None:
    keystore, policy = cell
    before = _cert(keystore, "/gripper")
    with keystore.transaction(fixed_now, "issue") as tx:
        enclave = policy.enclave("/gripper")
        assert enclave is not None
        staged = tx.stage_enclave("/gripper", archive=True)
        material = issue_material(enclave, policy, fixed_now, tx.ca)
        rotation_module.write_material(staged.directory, material, link_crl=True)
        staged.record = material.record()
        assert manifest_writes == []
        assert _cert(keystore, "/gripper") == before  # staged, not yet switched in
    assert manifest_writes == [fixed_now]
    assert _cert(keystore, "/gripper") != before
    assert check_integrity(keystore.layout, at=fixed_now).ok
    assert not keystore.layout.journal.exists()


def test_a_transaction_without_changes_writes_nothing(
    cell: tuple[Keystore, WorkcellPolicy], fixed_now: dt.datetime, manifest_writes: list[dt.datetime]
) -> None:
    keystore, _ = cell
    signed = keystore.layout.integrity_p7s.read_bytes()
    log = keystore.layout.audit_log.read_bytes()
    with keystore.transaction(fixed_now, "nothing"):
        pass
    assert manifest_writes == []
    assert keystore.layout.integrity_p7s.read_bytes() == signed
    assert keystore.layout.audit_log.read_bytes() == log
