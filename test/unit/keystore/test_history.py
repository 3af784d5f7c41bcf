"""history: versions with links and modes, bounded retention, rollback rules, crash recovery."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from test_rotation import assert_enclave_consistent, enclave_digest  # noqa: E402  (same test folder)

from cobot_security import atomic
from cobot_security.errors import InputError, KeystoreError
from cobot_security.keystore.ca import renew_ca
from cobot_security.keystore.history import enclave_history_dir, list_history
from cobot_security.keystore.integrity import check_integrity
from cobot_security.keystore.recovery import clean_leftovers
from cobot_security.keystore.rollback import rollback_enclave
from cobot_security.keystore.rotation import RotationItem, rotate_enclaves
from cobot_security.keystore.store import Keystore, init_keystore
from cobot_security.policy.model import WorkcellPolicy

PolicyFactory = Callable[..., WorkcellPolicy]
PATHS = ("/cell/arm", "/cell", "/gripper")


@pytest.fixture
def cell(tmp_path: Path, policy_factory: PolicyFactory, fixed_now: dt.datetime) -> tuple[Keystore, WorkcellPolicy]:
    policy = policy_factory(*PATHS)
    return init_keystore(tmp_path / "ks", policy, fixed_now), policy


def _rotate(keystore: Keystore, policy: WorkcellPolicy, path: str, now: dt.datetime, retention: int = 5) -> None:
    rotate_enclaves(keystore, policy, [RotationItem(path, "requested", None, None)], now, retention=retention)


def test_rotation_archives_the_replaced_files_with_modes_and_links(cell: tuple[Keystore, WorkcellPolicy],
                                                                    fixed_now: dt.datetime) -> None:
    keystore, policy = cell
    layout = keystore.layout
    before = enclave_digest(layout.enclave_dir("/cell"))
    _rotate(keystore, policy, "/cell", fixed_now)
    (version,) = list_history(layout, "/cell")
    assert version.directory.parent == layout.meta_dir / "history" / "~cell"
    assert version.version.startswith("20261129T120000Z-")
    assert enclave_digest(version.directory) == before
    assert (version.directory / "identity_ca.cert.pem").is_symlink()
    assert not (version.directory / "arm").exists()  # nested enclave not included
    assert (layout.enclave_dir("/cell") / "arm" / "cert.pem").is_file()  # ... and still live
    assert stat.S_IMODE(version.directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(version.directory.parent.stat().st_mode) == 0o700
    assert enclave_history_dir(layout, "/cell/arm").name == "~cell~arm"


def test_retention_keeps_the_newest(cell: tuple[Keystore, WorkcellPolicy], fixed_now: dt.datetime) -> None:
    keystore, policy = cell
    serials = []
    for day in range(4):
        serials.append(keystore.list_enclaves()[-1].serial)  # /gripper is last
        _rotate(keystore, policy, "/gripper", fixed_now + dt.timedelta(days=day), retention=2)
    versions = list_history(keystore.layout, "/gripper")
    assert [v.serial for v in versions] == [serials[3], serials[2]]
    with pytest.raises(InputError, match="at least 1 version"):
        _rotate(keystore, policy, "/gripper", fixed_now, retention=0)
    assert [v.serial for v in list_history(keystore.layout, "/gripper")] == [serials[3], serials[2]]


def test_rollback_restores_previous_identity_and_keeps_links(cell: tuple[Keystore, WorkcellPolicy],
                                                              fixed_now: dt.datetime) -> None:
    keystore, policy = cell
    layout = keystore.layout
    original = enclave_digest(layout.enclave_dir("/cell"))
    _rotate(keystore, policy, "/cell", fixed_now)
    restored = rollback_enclave(keystore, "/cell", fixed_now)
    assert enclave_digest(layout.enclave_dir("/cell")) == original
    assert (layout.enclave_dir("/cell") / "arm" / "cert.pem").is_file()
    assert_enclave_consistent(layout, "/cell")
    assert check_integrity(layout).ok
    manifest = json.loads(layout.manifest.read_text())
    assert manifest["enclaves"]["/cell"]["serial"] == restored.serial
    assert len(list_history(layout, "/cell")) == 2  # the rotated version was archived too
    events = [json.loads(x)["event"] for x in (layout.meta_dir / "audit.log").read_text().splitlines()]
    assert events[-1] == "rollback"


def test_rollback_skips_expired_versions_and_names_why(cell: tuple[Keystore, WorkcellPolicy],
                                                        fixed_now: dt.datetime) -> None:
    keystore, policy = cell
    _rotate(keystore, policy, "/gripper", fixed_now)
    later = fixed_now + dt.timedelta(days=91)  # the archived certificate expired
    with pytest.raises(KeystoreError, match="certificate not valid now"):
        rollback_enclave(keystore, "/gripper", later)
    with pytest.raises(KeystoreError, match="version nope: expected one of"):
        rollback_enclave(keystore, "/gripper", fixed_now, "nope")


def test_rollback_refuses_a_version_from_another_identity_ca(
    cell: tuple[Keystore, WorkcellPolicy], tmp_path: Path, policy_factory: PolicyFactory, fixed_now: dt.datetime
) -> None:
    keystore, policy = cell
    _rotate(keystore, policy, "/gripper", fixed_now)
    foreign = init_keystore(tmp_path / "foreign", policy_factory(*PATHS), fixed_now)
    (version,) = list_history(keystore.layout, "/gripper")
    for name in ("cert.pem", "key.pem"):
        shutil.copy(foreign.layout.enclave_dir("/gripper") / name, version.directory / name)
    with pytest.raises(KeystoreError, match="not issued by the current identity CA"):
        rollback_enclave(keystore, "/gripper", fixed_now)


def test_rollback_after_permissions_ca_renewal_resigns(cell: tuple[Keystore, WorkcellPolicy],
                                                        fixed_now: dt.datetime) -> None:
    keystore, policy = cell
    _rotate(keystore, policy, "/gripper", fixed_now)
    renew_ca(keystore, policy, fixed_now + dt.timedelta(hours=1), which=("permissions",))
    rollback_enclave(keystore, "/gripper", fixed_now + dt.timedelta(hours=1))
    assert_enclave_consistent(keystore.layout, "/gripper")


def test_recover_removes_staging_and_restores_nested_enclaves(cell: tuple[Keystore, WorkcellPolicy],
                                                               fixed_now: dt.datetime) -> None:
    keystore, policy = cell
    layout = keystore.layout
    _rotate(keystore, policy, "/gripper", fixed_now)
    half = enclave_history_dir(layout, "/gripper") / ".20261129T130000Z-ab.staging-0123456789ab"
    half.mkdir()
    (half / "cert.pem").write_text("partial")
    # A kill after the swap of /cell but before its nested /cell/arm was moved across:
    cell_dir = layout.enclave_dir("/cell")
    old = cell_dir.parent / ".cell.staging-aaaaaaaaaaaa"
    old.mkdir()
    os.rename(cell_dir / "arm", old / "arm")
    unbuilt = layout.enclaves_dir / ".gripper.staging-bbbbbbbbbbbb"
    unbuilt.mkdir()
    with atomic.KeystoreLock(layout.lock):
        removed = clean_leftovers(layout)
    assert sorted(p.name for p in removed) == sorted([half.name, old.name, unbuilt.name])
    assert (cell_dir / "arm" / "cert.pem").is_file()
    assert not half.exists() and not old.exists() and not unbuilt.exists()
    assert len(list_history(layout, "/gripper")) == 1
