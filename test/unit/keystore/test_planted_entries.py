"""Nothing we did not create is followed, moved or read: planted links, strangers' files, leftovers."""

from __future__ import annotations

import datetime as dt
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from planted import directory_chain

from cobot_security.errors import KeystoreError
from cobot_security.health.certificate_probes import probe_certificates
from cobot_security.health.key_file_probes import probe_key_modes
from cobot_security.keystore.audit import verify_audit_log
from cobot_security.keystore.integrity import check_integrity
from cobot_security.keystore.revocation import revoke_enclave
from cobot_security.keystore.rollback import rollback_enclave
from cobot_security.keystore.rotation import RotationItem, plan_rotation, rotate_enclaves
from cobot_security.keystore.store import Keystore, init_keystore
from cobot_security.policy.model import WorkcellPolicy
from cobot_security.status import Level

PolicyFactory = Callable[..., WorkcellPolicy]
PATHS = ("/cell/arm", "/cell", "/gripper")
NOBODY = 65534


@pytest.fixture
def cell(tmp_path: Path, policy_factory: PolicyFactory, fixed_now: dt.datetime) -> tuple[Keystore, WorkcellPolicy]:
    policy = policy_factory(*PATHS)
    return init_keystore(tmp_path / "ks", policy, fixed_now), policy


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory outside the keystore with sub-directories a careless recovery would move in."""
    victim = tmp_path / "victim"
    (victim / "etc").mkdir(parents=True)
    (victim / "etc" / "secret").write_text("not yours")
    (victim / "home").mkdir()
    return victim


def _tree(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def _rotate(keystore: Keystore, policy: WorkcellPolicy, path: str, now: dt.datetime) -> None:
    rotate_enclaves(keystore, policy, [RotationItem(path, "requested", None, None)], now)


def test_planted_staging_symlink_is_refused_and_its_target_untouched(
        cell: tuple[Keystore, WorkcellPolicy], outside: Path, fixed_now: dt.datetime) -> None:
    keystore, policy = cell
    before = _tree(outside)
    planted = keystore.layout.enclaves_dir / "cell" / ".arm.staging-0000"
    planted.symlink_to(outside)
    with pytest.raises(KeystoreError, match=r"\.arm\.staging-0000.*a symlink .*did not create it"):
        _rotate(keystore, policy, "/gripper", fixed_now)
    assert _tree(outside) == before
    assert not (keystore.layout.enclave_dir("/cell/arm") / "etc").exists()
    planted.unlink()
    _rotate(keystore, policy, "/gripper", fixed_now)  # once removed, changes work again


@pytest.mark.parametrize("where", ["history", "meta", "sibling"])
def test_planted_leftover_links_elsewhere_are_refused(cell: tuple[Keystore, WorkcellPolicy], outside: Path,
                                                      fixed_now: dt.datetime, where: str) -> None:
    keystore, policy = cell
    layout = keystore.layout
    _rotate(keystore, policy, "/gripper", fixed_now)
    planted = {
        "history": layout.history_dir / "~gripper" / ".20260101T000000Z-ab.staging-0000",
        "meta": layout.meta_dir / ".manifest.json.tmp-000000000000",
        "sibling": layout.root.parent / f".{layout.root.name}.staging-000000000000",
    }[where]
    planted.symlink_to(outside)
    with pytest.raises(KeystoreError, match="did not create it"):
        _rotate(keystore, policy, "/gripper", fixed_now)
    assert outside.is_dir() and (outside / "etc" / "secret").read_text() == "not yours"


def test_a_strangers_file_named_like_our_leftover_is_refused(cell: tuple[Keystore, WorkcellPolicy],
                                                             fixed_now: dt.datetime) -> None:
    keystore, policy = cell
    stranger = keystore.layout.enclaves_dir / ".gripper.staging-0123"
    stranger.mkdir()
    os.chown(stranger, NOBODY, NOBODY)
    with pytest.raises(KeystoreError, match="owned by uid 65534"):
        _rotate(keystore, policy, "/gripper", fixed_now)
    assert stranger.is_dir()


def test_our_own_leftovers_are_cleaned_on_the_next_change(cell: tuple[Keystore, WorkcellPolicy],
                                                          fixed_now: dt.datetime) -> None:
    keystore, policy = cell
    layout = keystore.layout
    leftovers = [layout.meta_dir / ".manifest.json.tmp-0123456789ab",
                 layout.enclave_dir("/cell") / ".cert.pem.tmp-0123456789ab",
                 layout.public_dir / ".crl.pem.tmp-0123456789ab"]
    for path in leftovers:
        path.write_text("half written")
    _rotate(keystore, policy, "/gripper", fixed_now)
    assert [p for p in leftovers if os.path.lexists(p)] == []
    assert check_integrity(layout, at=fixed_now).ok


def test_symlinked_key_is_reported_by_list_health_and_never_restored(
        cell: tuple[Keystore, WorkcellPolicy], tmp_path: Path, fixed_now: dt.datetime) -> None:
    keystore, policy = cell
    layout = keystore.layout
    _rotate(keystore, policy, "/gripper", fixed_now)  # a version to roll back to
    stolen = tmp_path / "other.key.pem"
    stolen.write_bytes((layout.enclave_dir("/cell") / "key.pem").read_bytes())
    key = layout.enclave_dir("/gripper") / "key.pem"
    key.unlink()
    key.symlink_to(stolen)
    infos = {i.path: i for i in keystore.list_enclaves()}
    assert not infos["/gripper"].files_ok
    assert any(r.startswith("key.pem: unexpected symlink") for r in infos["/gripper"].refused)
    assert infos["/cell"].files_ok
    modes = {f.subject: f for f in probe_key_modes(layout, os.getuid())}
    assert modes["/gripper"].level == Level.ERROR and "symlink" in modes["/gripper"].message
    # The rotation that repairs it archives the planted link as found (moved, never read) ...
    _rotate(keystore, policy, "/gripper", fixed_now + dt.timedelta(hours=1))
    assert keystore.list_enclaves()[-1].files_ok
    # ... and a rollback never restores a version whose key is a link.
    newest = sorted((layout.history_dir / "~gripper").iterdir())[-1]
    assert (newest / "key.pem").is_symlink()
    restored = rollback_enclave(keystore, "/gripper", fixed_now + dt.timedelta(hours=2))
    assert restored.directory != newest
    assert not (layout.enclave_dir("/gripper") / "key.pem").is_symlink()


def test_symlinked_certificate_is_reported_per_enclave_and_rotate_all_repairs_it(
        cell: tuple[Keystore, WorkcellPolicy], fixed_now: dt.datetime) -> None:
    keystore, policy = cell
    layout = keystore.layout
    cert = layout.enclave_dir("/gripper") / "cert.pem"
    cert.unlink()
    cert.symlink_to(layout.enclave_dir("/cell") / "cert.pem")
    assert [p.path for p in keystore.enclave_problems()] == ["/gripper"]
    assert [i.path for i in keystore.list_enclaves()] == ["/cell", "/cell/arm"]
    chain = {f.subject: f for f in probe_certificates(layout, policy, fixed_now) if f.check == "cert_expiry"}
    assert chain["/gripper"].level == Level.ERROR and "unexpected symlink" in chain["/gripper"].message
    plan = plan_rotation(keystore, policy, fixed_now, all=True)
    assert [(i.enclave, i.reason) for i in plan][-1] == ("/gripper", "unreadable")
    rotate_enclaves(keystore, policy, plan, fixed_now)
    assert keystore.enclave_problems() == [] and all(i.files_ok for i in keystore.list_enclaves())


def test_missing_audit_key_beside_a_log_is_an_error_not_a_new_key(cell: tuple[Keystore, WorkcellPolicy],
                                                                  fixed_now: dt.datetime) -> None:
    keystore, policy = cell
    layout = keystore.layout
    layout.audit_key.unlink()
    with pytest.raises(KeystoreError, match="audit key missing: the log cannot be extended"):
        _rotate(keystore, policy, "/gripper", fixed_now)
    assert not layout.audit_key.exists()


def test_enclave_directories_are_private(cell: tuple[Keystore, WorkcellPolicy], fixed_now: dt.datetime) -> None:
    keystore, policy = cell
    _rotate(keystore, policy, "/cell", fixed_now)
    for path in PATHS:
        assert stat.S_IMODE(keystore.layout.enclave_dir(path).stat().st_mode) == 0o700
    assert verify_audit_log(keystore.layout).ok


def test_a_planted_chain_deeper_than_the_recursion_limit_is_walked_everywhere(
        cell: tuple[Keystore, WorkcellPolicy], fixed_now: dt.datetime) -> None:
    keystore, policy = cell
    layout = keystore.layout
    with directory_chain(layout.enclaves_dir, 1200):
        # os.walk recursed once per level: every reader of the keystore ended in RecursionError.
        assert [i.path for i in keystore.list_enclaves()] == ["/cell", "/cell/arm", "/gripper"]
        assert keystore.enclave_problems() == []
        assert {f.subject for f in probe_key_modes(layout, os.getuid())} >= {"/cell", "/cell/arm", "/gripper"}
        assert probe_certificates(layout, policy, fixed_now)
        assert check_integrity(layout).ok  # directories alone are not entries of the manifest
        _rotate(keystore, policy, "/gripper", fixed_now)  # a transaction: leftover scan, commit
        assert check_integrity(layout).ok


@pytest.mark.parametrize("name", ["manifest.json", "revoked.json", "transaction.json", "integrity.json"])
def test_json_nested_deeper_than_the_recursion_limit_is_a_keystore_error(
        cell: tuple[Keystore, WorkcellPolicy], fixed_now: dt.datetime, name: str) -> None:
    keystore, policy = cell
    layout = keystore.layout
    later = fixed_now + dt.timedelta(days=1)
    target = layout.revoked if name == "revoked.json" else layout.meta_dir / name
    target.write_text("[" * 200_000 + "]" * 200_000)  # json.loads recursed once per level
    if name == "integrity.json":  # the readable copy: the check says it no longer matches its signature
        assert "does not match its signature" in str(check_integrity(layout).problem)
        return
    try:
        if name == "revoked.json":
            revoke_enclave(keystore, "/gripper", "key_compromise", later, policy)
        else:
            rotate_enclaves(keystore, policy, [RotationItem("/gripper", "requested", None, None)], later)
    except KeystoreError as exc:  # a one-line error naming the file (else the change went through)
        assert name in str(exc), exc


def test_a_planted_chain_in_a_replaced_enclave_is_archived_and_pruned_without_recursion(
        cell: tuple[Keystore, WorkcellPolicy], fixed_now: dt.datetime, tmp_path: Path) -> None:
    keystore, policy = cell
    layout = keystore.layout
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("x")
    deep = str(layout.enclave_dir("/gripper") / ".d")
    os.mkdir(deep)
    for level in range(1500):  # deeper than the recursion limit; a link out of the keystore on the way
        deep += "/d"
        os.mkdir(deep)
        if level == 700:
            os.symlink(outside, deep + "/out")
    # The first rotation moves the old version (chain and all) into the history; with a retention of
    # one, the second deletes it: shutil.rmtree recursed once per level and every later rotation of
    # the enclave ended in a RecursionError after switching it in.
    for day in (1, 2):
        rotate_enclaves(keystore, policy, [RotationItem("/gripper", "requested", None, None)],
                        fixed_now + dt.timedelta(days=day), retention=1)
    versions = os.listdir(layout.history_dir / "~gripper")
    assert len(versions) == 1 and not os.path.lexists(layout.history_dir / "~gripper" / versions[0] / ".d")
    assert (outside / "precious").read_text() == "x"  # the link was removed, never followed
    assert check_integrity(layout).ok
