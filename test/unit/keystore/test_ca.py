"""ca: renewal keeps key and subject (old leaves still chain), re-signs; rollover stages and swaps."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509

from cobot_security import atomic
from cobot_security.errors import InputError, KeystoreError, LockError
from cobot_security.keystore.ca import (
    renew_ca,
    rollover_plan,
    stage_rollover,
    swap_keystores,
)
from cobot_security.keystore.integrity import check_integrity
from cobot_security.keystore.smime import verify_smime
from cobot_security.keystore.store import Keystore, init_keystore
from cobot_security.policy.model import WorkcellPolicy

PolicyFactory = Callable[..., WorkcellPolicy]
PATHS = ("/cell/arm", "/gripper")


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


@pytest.fixture
def cell(tmp_path: Path, policy_factory: PolicyFactory, fixed_now: dt.datetime) -> tuple[Keystore, WorkcellPolicy]:
    policy = policy_factory(*PATHS, ca_days=365)
    return init_keystore(tmp_path / "ks", policy, fixed_now, passphrase=b"pw"), policy


def test_identity_renewal_keeps_key_and_subject(cell: tuple[Keystore, WorkcellPolicy],
                                                fixed_now: dt.datetime) -> None:
    keystore, policy = cell
    layout = keystore.layout
    old = _cert(layout.identity_ca_cert)
    perm_before = layout.permissions_ca_cert.read_bytes()
    p7s_before = (layout.enclave_dir("/gripper") / "permissions.p7s").read_bytes()
    later = fixed_now + dt.timedelta(days=300)
    (result,) = renew_ca(keystore, policy, later, which=("identity",))
    new = _cert(layout.identity_ca_cert)
    assert new.subject == old.subject and new.public_key() == old.public_key()
    assert new.serial_number != old.serial_number and result.new_serial == format(new.serial_number, "x")
    assert new.not_valid_after_utc == later + dt.timedelta(days=365)
    leaf = _cert(layout.enclave_dir("/gripper") / "cert.pem")
    leaf.verify_directly_issued_by(new)  # enclaves issued under the old certificate still chain
    assert layout.permissions_ca_cert.read_bytes() == perm_before
    assert (layout.enclave_dir("/gripper") / "permissions.p7s").read_bytes() == p7s_before
    assert check_integrity(layout).ok


def test_permissions_renewal_resigns_every_document(cell: tuple[Keystore, WorkcellPolicy],
                                                    fixed_now: dt.datetime) -> None:
    keystore, policy = cell
    layout = keystore.layout
    later = fixed_now + dt.timedelta(days=1)
    (result,) = renew_ca(keystore, policy, later, which=("permissions",))
    assert result.resigned == 1 + len(PATHS)
    for p7s in [layout.governance_p7s] + [layout.enclave_dir(p) / "permissions.p7s" for p in PATHS]:
        verify_smime(p7s.read_bytes(), layout.permissions_ca_cert, at=later)
    assert check_integrity(layout).ok
    events = [json.loads(x) for x in (layout.meta_dir / "audit.log").read_text().splitlines()]
    assert events[-1]["event"] == "ca_renew" and events[-1]["subject"] == "permissions"


def test_single_ca_keystore_renews_its_one_certificate(tmp_path: Path, policy_factory: PolicyFactory,
                                                       fixed_now: dt.datetime) -> None:
    policy = policy_factory(*PATHS)
    keystore = init_keystore(tmp_path / "ks", policy, fixed_now, single_ca=True)
    results = renew_ca(keystore, policy, fixed_now, which=("identity",))
    assert [r.which for r in results] == ["identity", "permissions"]
    assert keystore.layout.identity_ca_cert.is_symlink()
    verify_smime((keystore.layout.enclave_dir("/gripper") / "permissions.p7s").read_bytes(),
                 keystore.layout.permissions_ca_cert, at=fixed_now)


def test_renew_rejects_unknown_kind_and_waits_for_the_lock(cell: tuple[Keystore, WorkcellPolicy],
                                                           fixed_now: dt.datetime) -> None:
    keystore, policy = cell
    with pytest.raises(InputError, match="one or both of identity, permissions"):
        renew_ca(keystore, policy, fixed_now, which=("root",))
    impatient = Keystore.open(keystore.layout.root, b"pw", lock_timeout_s=0.1)
    before = keystore.layout.identity_ca_cert.read_bytes()
    with atomic.KeystoreLock(keystore.layout.lock):
        with pytest.raises(LockError):
            renew_ca(impatient, policy, fixed_now)
    assert keystore.layout.identity_ca_cert.read_bytes() == before


def test_rollover_stage_plan_and_swap(cell: tuple[Keystore, WorkcellPolicy], tmp_path: Path,
                                      fixed_now: dt.datetime) -> None:
    keystore, policy = cell
    root = keystore.layout.root
    old_ca = keystore.layout.identity_ca_cert.read_bytes()
    staged = tmp_path / "ks.next"
    stage_rollover(root, policy, fixed_now, staged, passphrase=b"pw")
    assert keystore.layout.identity_ca_cert.read_bytes() == old_ca  # live keystore untouched
    steps = rollover_plan(root, staged, policy)
    assert any("Stop ALL nodes" in s for s in steps) and any("--swap" in s for s in steps)
    new_ca = (staged / "public" / "identity_ca.cert.pem").read_bytes()
    backup = swap_keystores(root, staged, fixed_now)
    assert backup.name == "ks.pre-rollover-20261129T120000Z"
    assert (root / "public" / "identity_ca.cert.pem").read_bytes() == new_ca
    assert (backup / "public" / "identity_ca.cert.pem").read_bytes() == old_ca
    assert not staged.exists()
    events = [json.loads(x)["event"] for x in (root / ".cobot_security" / "audit.log").read_text().splitlines()]
    assert events[-1] == "ca_rollover"


def test_rollover_refuses_bad_targets(cell: tuple[Keystore, WorkcellPolicy], tmp_path: Path,
                                      fixed_now: dt.datetime) -> None:
    keystore, policy = cell
    root = keystore.layout.root
    with pytest.raises(InputError, match="outside the live keystore"):
        stage_rollover(root, policy, fixed_now, root / "inner")
    (tmp_path / "empty").mkdir()
    with pytest.raises(KeystoreError, match="not a keystore"):
        swap_keystores(root, tmp_path / "empty", fixed_now)
