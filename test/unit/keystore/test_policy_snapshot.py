"""The keystore's policy snapshot: the same policy as the loader's, served only for the same bytes,
never from a file the permissions CA did not seal, and never a traceback on a hostile one."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from cobot_security.errors import KeystoreError, PolicyError
from cobot_security.keystore.layout import KeystoreLayout
from cobot_security.keystore.policy_snapshot import load_policy_remembered
from cobot_security.keystore.revocation import revoke_enclave
from cobot_security.keystore.rotation import plan_rotation, rotate_enclaves
from cobot_security.keystore.store import Keystore, init_keystore
from cobot_security.policy import snapshot
from cobot_security.policy.load import load_policy
from cobot_security.policy.model import Enclave, GovernanceOptions, Host, Lifetimes, NodeGrants, WorkcellPolicy
from cobot_security.policy.snapshot import policy_from_data, policy_to_data

REPO = Path(__file__).resolve().parents[3]
VALID_POLICIES = [REPO / "policies" / "workcell.yaml", *(REPO / "test" / "assets" / "policies").glob("[!b]*.yaml")]


@pytest.mark.parametrize("path", VALID_POLICIES, ids=lambda p: p.name)
def test_the_data_rebuilds_exactly_the_loaded_policy(path: Path, host_policy: WorkcellPolicy) -> None:
    policy = load_policy(path)
    rebuilt = policy_from_data(json.loads(json.dumps(policy_to_data(policy))), policy.source)
    assert repr(rebuilt) == repr(policy)  # every field, the source lines and ``source`` included
    hosts = dataclasses.replace(host_policy, lifetimes=dataclasses.replace(
        host_policy.lifetimes, enclave_duration=dt.timedelta(days=3, seconds=7, microseconds=1)))
    assert repr(policy_from_data(json.loads(json.dumps(policy_to_data(hosts))), None)) == repr(hosts)


def test_the_snapshot_knows_every_field_of_the_model() -> None:
    """A field added to the model must be added to the snapshot (or it would be lost on a hit)."""
    def names(cls: type) -> set[str]:
        return {f.name for f in dataclasses.fields(cls)}

    assert names(GovernanceOptions) == set(snapshot.GOVERNANCE_FIELDS)
    assert names(Lifetimes) == set(snapshot.LIFETIME_FIELDS)
    assert names(NodeGrants) == {"name", "namespace", "line", *snapshot.NODE_LIST_FIELDS}
    assert names(Enclave) == {"path", "nodes", "builtins", "line", "hosts"}
    assert names(Host) == {"name", "role", "description", "line"}
    assert names(WorkcellPolicy) == set(policy_to_data(load_policy(VALID_POLICIES[0]))) | {"source"}


def _mutations(value: object, path: tuple[object, ...] = ()) -> list[tuple[tuple[object, ...], object]]:
    """(path, replacement) for every node of ``value``: wrong types and shapes."""
    found: list[tuple[tuple[object, ...], object]] = []
    for wrong in (None, "x", 7, 10**12, True, [], {}, 1.5, [["x"]]):
        found.append((path, wrong))
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        found += _mutations(child, (*path, key))
    return found


def test_any_other_data_is_a_value_error_never_a_traceback() -> None:
    data = policy_to_data(load_policy(REPO / "test" / "assets" / "policies" / "minimal.yaml"))
    mutations = _mutations(data)
    assert len(mutations) > 200
    for path, wrong in mutations:
        mutated = json.loads(json.dumps(data))
        original: object = mutated
        if not path:
            mutated = wrong
        else:
            target = mutated
            for key in path[:-1]:
                target = target[key]
            original, target[path[-1]] = target[path[-1]], wrong
        try:
            policy_from_data(mutated, "p")
        except ValueError:
            continue
        # Accepted: only a value of the type the schema has there (or a line number dropped to None).
        assert type(wrong) is type(original) or (wrong is None and isinstance(original, int)), (path, wrong)


@pytest.fixture
def cell(tmp_path: Path, fixed_now: dt.datetime) -> tuple[Path, Path]:
    """A keystore made from the example policy, and a copy of that policy file."""
    policy_file = tmp_path / "workcell.yaml"
    shutil.copyfile(VALID_POLICIES[0], policy_file)
    root = tmp_path / "ks"
    init_keystore(root, load_policy(policy_file), fixed_now)
    return root, policy_file


def _create(root: Path, policy_file: Path, now: dt.datetime, path: str = "/cell/gripper") -> bool:
    """Issue ``path`` again as ``enclave create --force`` does; whether the snapshot served the policy."""
    remembered = load_policy_remembered(KeystoreLayout(root), policy_file, now)
    assert repr(remembered.policy) == repr(load_policy(policy_file))
    policy = remembered.policy
    Keystore.open(root, remembered=remembered).create_enclave(policy.enclave(path), policy, now, force=True)
    return remembered.from_snapshot


def test_a_change_leaves_a_sealed_snapshot_the_next_command_uses(cell: tuple[Path, Path],
                                                                 fixed_now: dt.datetime) -> None:
    root, policy_file = cell
    layout = KeystoreLayout(root)
    assert not _create(root, policy_file, fixed_now)
    assert layout.policy_snapshot.stat().st_mode & 0o777 == 0o600
    assert _create(root, policy_file, fixed_now)
    assert _create(root, policy_file, fixed_now, "/cell/arm_driver")


def test_other_bytes_or_another_loader_are_validated_again(cell: tuple[Path, Path], fixed_now: dt.datetime,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    root, policy_file = cell
    _create(root, policy_file, fixed_now)
    policy_file.write_text(policy_file.read_text() + "# a comment changes the bytes\n")
    assert not _create(root, policy_file, fixed_now)
    assert _create(root, policy_file, fixed_now)
    monkeypatch.setattr(snapshot, "_loader_fingerprint", lambda: "an edited loader")
    assert not _create(root, policy_file, fixed_now)

    # An invalid file is refused with the loader's own message, whatever the snapshot holds.
    policy_file.write_text(policy_file.read_text().replace("domain_ids: [", "domain_ids: [999, "))
    with pytest.raises(PolicyError) as remembered:
        load_policy_remembered(KeystoreLayout(root), policy_file, fixed_now)
    with pytest.raises(PolicyError) as loaded:
        load_policy(policy_file)
    assert str(remembered.value) == str(loaded.value)


def _grant_everything(data: bytes) -> bytes:
    """The snapshot's payload with the first node allowed to publish on every topic (re-encoded)."""
    envelope = json.loads(data)
    payload = json.loads(base64.b64decode(envelope["payload"]))
    payload["policy"]["enclaves"][0][4][0][3].append("*")
    envelope["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    return json.dumps(envelope).encode()


@pytest.mark.parametrize("plant", ["widened", "other_ca", "symlink", "garbage", "deep_json", "directory"])
def test_a_snapshot_the_ca_did_not_seal_is_never_used(cell: tuple[Path, Path], tmp_path: Path,
                                                      fixed_now: dt.datetime, plant: str) -> None:
    root, policy_file = cell
    layout = KeystoreLayout(root)
    _create(root, policy_file, fixed_now)
    sealed = layout.policy_snapshot.read_bytes()
    outside = tmp_path / "outside.json"
    outside.write_bytes(sealed)
    layout.policy_snapshot.unlink()
    if plant == "widened":
        layout.policy_snapshot.write_bytes(_grant_everything(sealed))
    elif plant == "other_ca":  # sealed by another keystore's CA for the same bytes
        other = tmp_path / "other"
        init_keystore(other, load_policy(policy_file), fixed_now)
        _create(other, policy_file, fixed_now)
        layout.policy_snapshot.write_bytes((other / ".cobot_security" / "policy_snapshot.json").read_bytes())
    elif plant == "symlink":  # a genuine snapshot, but through a link we did not create
        layout.policy_snapshot.symlink_to(outside)
    elif plant == "garbage":
        layout.policy_snapshot.write_bytes(b"\xff\x00{" * 1000)
    elif plant == "deep_json":
        layout.policy_snapshot.write_bytes(b"[" * 100_000)
    else:
        layout.policy_snapshot.mkdir()
    remembered = load_policy_remembered(layout, policy_file, fixed_now)
    assert not remembered.from_snapshot
    assert repr(remembered.policy) == repr(load_policy(policy_file))
    Keystore.open(root, remembered=remembered).create_enclave(remembered.policy.enclave("/cell/gripper"),
                                                              remembered.policy, fixed_now, force=True)
    assert outside.read_bytes() == sealed  # nothing written through a planted link
    assert [p.name for p in layout.meta_dir.iterdir() if p.name.startswith(".")] == []  # no temporary left
    if plant == "directory":  # cannot be replaced: the change still succeeded, the next one validates
        assert layout.policy_snapshot.is_dir()
        assert not load_policy_remembered(layout, policy_file, fixed_now).from_snapshot
    else:
        assert not layout.policy_snapshot.is_symlink()
        assert load_policy_remembered(layout, policy_file, fixed_now).from_snapshot


def test_a_permissions_ca_cryptography_cannot_use_is_a_miss_and_a_one_line_error(
        cell: tuple[Path, Path], tmp_path: Path, fixed_now: dt.datetime) -> None:
    """A planted SM2 certificate as the permissions CA: no traceback from the snapshot or the CA check."""
    root, policy_file = cell
    _create(root, policy_file, fixed_now)
    key, pem = tmp_path / "sm2.key", tmp_path / "sm2.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "SM2", "-out", key], check=True, capture_output=True)
    subprocess.run(["openssl", "req", "-x509", "-new", "-key", key, "-subj", "/CN=x", "-days", "30", "-out", pem,
                    "-sm3", "-sigopt", "distid:1234567812345678"], check=True, capture_output=True)
    layout = KeystoreLayout(root)
    layout.permissions_ca_cert.unlink()
    layout.permissions_ca_cert.write_bytes(pem.read_bytes())
    remembered = load_policy_remembered(layout, policy_file, fixed_now)
    assert not remembered.from_snapshot
    with pytest.raises(KeystoreError, match="expected the private key of permissions_ca.cert.pem"):
        Keystore.open(root, remembered=remembered).create_enclave(remembered.policy.enclave("/cell/gripper"),
                                                                  remembered.policy, fixed_now, force=True)


def test_a_rotation_leaves_the_snapshot_too(cell: tuple[Path, Path], fixed_now: dt.datetime) -> None:
    root, policy_file = cell
    layout = KeystoreLayout(root)
    remembered = load_policy_remembered(layout, policy_file, fixed_now)
    assert not remembered.from_snapshot
    keystore = Keystore.open(root, remembered=remembered)
    items = plan_rotation(keystore, remembered.policy, fixed_now, enclaves=["/cell/gripper"])
    rotate_enclaves(keystore, remembered.policy, items, fixed_now)
    assert load_policy_remembered(layout, policy_file, fixed_now).from_snapshot


def test_a_revocation_leaves_the_snapshot_too(cell: tuple[Path, Path], fixed_now: dt.datetime) -> None:
    root, policy_file = cell
    layout = KeystoreLayout(root)
    remembered = load_policy_remembered(layout, policy_file, fixed_now)
    revoke_enclave(Keystore.open(root, remembered=remembered), "/cell/gripper", "key_compromise", fixed_now,
                   remembered.policy)
    assert load_policy_remembered(layout, policy_file, fixed_now).from_snapshot


def test_a_change_that_fails_leaves_no_snapshot(cell: tuple[Path, Path], fixed_now: dt.datetime) -> None:
    root, policy_file = cell
    layout = KeystoreLayout(root)
    remembered = load_policy_remembered(layout, policy_file, fixed_now)
    with pytest.raises(KeystoreError, match="already exists"):
        Keystore.open(root, remembered=remembered).create_enclave(remembered.policy.enclave("/cell/gripper"),
                                                                  remembered.policy, fixed_now)
    assert not os.path.lexists(layout.policy_snapshot)


def test_init_leaves_a_snapshot_sealed_by_its_new_ca(tmp_path: Path, fixed_now: dt.datetime) -> None:
    policy_file = tmp_path / "workcell.yaml"
    shutil.copyfile(VALID_POLICIES[0], policy_file)
    root = tmp_path / "ks"
    layout = KeystoreLayout(root)
    remembered = load_policy_remembered(layout, policy_file, fixed_now)
    init_keystore(root, remembered.policy, fixed_now, remembered=remembered)
    assert load_policy_remembered(layout, policy_file, fixed_now).from_snapshot
    served = load_policy_remembered(layout, policy_file, fixed_now)
    init_keystore(root, served.policy, fixed_now, force=True, remembered=served)  # a new CA: sealed again
    assert load_policy_remembered(layout, policy_file, fixed_now).from_snapshot
