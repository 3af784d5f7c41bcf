"""Keystore.batch: the signed integrity manifest is written once per rotation, and still on failure."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest

from cobot_security import atomic
from cobot_security.errors import KeystoreError
from cobot_security.keystore import store as store_module
from cobot_security.keystore.integrity import check_integrity
from cobot_security.keystore.rotation import RotationFailed, plan_rotation, rotate_enclaves
from cobot_security.keystore.store import EnclaveInfo, Keystore, init_keystore
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
    real = store_module.write_integrity_manifest
    calls: list[dt.datetime] = []

    def counting(layout: object, cert: object, key: object, now: dt.datetime) -> None:
        calls.append(now)
        real(layout, cert, key, now)  # type: ignore[arg-type]

    monkeypatch.setattr(store_module, "write_integrity_manifest", counting)
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
    real = Keystore.create_enclave
    calls: list[str] = []

    def failing(self: Keystore, enclave: Enclave, policy: WorkcellPolicy, now: dt.datetime, *,
                force: bool = False) -> EnclaveInfo:
        calls.append(enclave.path)
        if len(calls) == 2:
            raise KeystoreError(self.layout.enclave_dir(enclave.path), "injected failure")
        return real(self, enclave, policy, now, force=force)

    monkeypatch.setattr(Keystore, "create_enclave", failing)


def _fail_swap_on_second(monkeypatch: pytest.MonkeyPatch) -> None:
    real = atomic.swap_into_place
    calls: list[Path] = []

    def failing(staged: Path, target: Path) -> Path | None:
        calls.append(target)
        if len(calls) == 2:  # inside create_enclave, after the staged enclave is fully written
            raise OSError(28, "No space left on device", str(target))
        return real(staged, target)

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


def test_nested_batches_sign_at_the_outermost_end(
    cell: tuple[Keystore, WorkcellPolicy], fixed_now: dt.datetime, manifest_writes: list[dt.datetime]
) -> None:
    keystore, policy = cell
    enclave = policy.enclave("/gripper")
    assert enclave is not None
    with keystore.batch():
        with keystore.batch():
            keystore.create_enclave(enclave, policy, fixed_now, force=True)
        assert manifest_writes == []
        assert not check_integrity(keystore.layout, at=fixed_now).ok  # deferred: stale inside the batch
    assert manifest_writes == [fixed_now]
    assert check_integrity(keystore.layout, at=fixed_now).ok


def test_batch_without_changes_writes_nothing(
    cell: tuple[Keystore, WorkcellPolicy], manifest_writes: list[dt.datetime]
) -> None:
    keystore, _ = cell
    signed = keystore.layout.integrity_p7s.read_bytes()
    with keystore.batch():
        pass
    assert manifest_writes == []
    assert keystore.layout.integrity_p7s.read_bytes() == signed
