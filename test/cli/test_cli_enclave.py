"""``cobot-security enclave create|list``: passphrases, bad names, unreadable keystores, table and JSON."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest
from cryptography import x509

from cobot_security.policy.load import load_policy

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "policies" / "workcell.yaml"
GOOD_SECRET = "correct-horse-battery-staple"
WRONG_SECRET = "Tr0ub4dor&3-wrong"


def _serial(keystore: Path, enclave: str) -> int:
    pem = (keystore / "enclaves" / enclave.lstrip("/") / "cert.pem").read_bytes()
    return x509.load_pem_x509_certificate(pem).serial_number


@pytest.fixture
def encrypted_keystore(cli, keystore_dir, monkeypatch) -> Path:
    """A keystore whose CA keys are encrypted with GOOD_SECRET (from $CS_GOOD_PASS)."""
    monkeypatch.setenv("CS_GOOD_PASS", GOOD_SECRET)
    monkeypatch.setenv("CS_WRONG_PASS", WRONG_SECRET)
    result = cli("init", "--keystore", keystore_dir, "--passphrase-env", "CS_GOOD_PASS")
    assert result.code == 0, result.err
    return keystore_dir


# --- create: passphrase handling -------------------------------------------------------------


def test_create_with_wrong_passphrase_fails_before_writing(cli, encrypted_keystore, tree_digest):
    before = tree_digest(encrypted_keystore)

    result = cli("enclave", "create", "/cell/arm_driver", "--force", "--keystore", encrypted_keystore,
                 "--passphrase-env", "CS_WRONG_PASS")

    assert result.code == 2
    assert result.out == ""
    assert len(result.err_lines) == 1, result.err
    assert result.err.startswith("cobot-security enclave: error: ")
    assert "passphrase" in result.err
    for secret in (GOOD_SECRET, WRONG_SECRET):
        assert secret not in result.out
        assert secret not in result.err
    assert tree_digest(encrypted_keystore) == before


def test_create_without_passphrase_on_encrypted_keystore_fails(cli, encrypted_keystore, tree_digest):
    before = tree_digest(encrypted_keystore)

    result = cli("enclave", "create", "/cell/arm_driver", "--force", "--keystore", encrypted_keystore)

    assert result.code == 2
    assert len(result.err_lines) == 1, result.err
    assert "passphrase" in result.err
    assert tree_digest(encrypted_keystore) == before


def test_create_with_right_passphrase_reissues(cli, encrypted_keystore, tree_digest):
    old_serial = _serial(encrypted_keystore, "/cell/arm_driver")
    old_key = (encrypted_keystore / "enclaves/cell/arm_driver/key.pem").read_bytes()
    gripper_before = {k: v for k, v in tree_digest(encrypted_keystore).items() if "gripper" in k}

    result = cli("enclave", "create", "/cell/arm_driver", "--force", "--keystore", encrypted_keystore,
                 "--passphrase-env", "CS_GOOD_PASS")

    assert result.code == 0, result.err
    new_serial = _serial(encrypted_keystore, "/cell/arm_driver")
    assert new_serial != old_serial
    assert format(new_serial, "x") in result.out
    assert (encrypted_keystore / "enclaves/cell/arm_driver/key.pem").read_bytes() != old_key
    assert GOOD_SECRET not in result.out + result.err
    # the other enclaves are untouched
    assert {k: v for k, v in tree_digest(encrypted_keystore).items() if "gripper" in k} == gripper_before


def test_create_passphrase_env_unset_names_the_flag(cli, encrypted_keystore, tree_digest, monkeypatch):
    monkeypatch.delenv("CS_NOT_SET_ANYWHERE", raising=False)
    before = tree_digest(encrypted_keystore)

    result = cli("enclave", "create", "/cell/arm_driver", "--force", "--keystore", encrypted_keystore,
                 "--passphrase-env", "CS_NOT_SET_ANYWHERE")

    assert result.code == 2
    assert len(result.err_lines) == 1, result.err
    assert "--passphrase-env" in result.err
    assert "CS_NOT_SET_ANYWHERE" in result.err
    assert tree_digest(encrypted_keystore) == before


# --- create: existing enclave, bad names -----------------------------------------------------


def test_create_existing_enclave_without_force_refuses(cli, example_keystore, tree_digest):
    before = tree_digest(example_keystore)

    result = cli("enclave", "create", "/cell/gripper", "--keystore", example_keystore)

    assert result.code == 2
    assert len(result.err_lines) == 1, result.err
    assert "/cell/gripper" in result.err
    assert "--force" in result.err
    assert tree_digest(example_keystore) == before


def test_create_missing_enclave_in_cas_only_keystore(cli, keystore_dir):
    assert cli("init", "--keystore", keystore_dir, "--no-enclaves").code == 0

    result = cli("enclave", "create", "/cell/vision", "--keystore", keystore_dir)

    assert result.code == 0, result.err
    listed = json.loads(cli("enclave", "list", "--keystore", keystore_dir, "--json").out)
    assert [e["path"] for e in listed] == ["/cell/vision"]
    assert all(e["files_ok"] for e in listed)


@pytest.mark.parametrize("name", ["../etc", "etc/passwd", "cell/arm_driver", "/cell/../x", "/cell/./x",
                                  "/cell//x", "/", "/cell/arm driver", "/cell/arm_driver/"])
def test_create_rejects_unsafe_enclave_names(cli, example_keystore, tree_digest, name):
    before = tree_digest(example_keystore)

    result = cli("enclave", "create", name, "--force", "--keystore", example_keystore)

    assert result.code == 2
    assert result.out == ""
    assert len(result.err_lines) == 1, result.err
    assert "ENCLAVE" in result.err
    assert repr(name) in result.err
    assert tree_digest(example_keystore) == before
    assert not (example_keystore.parent / "etc").exists()


def test_create_enclave_not_in_policy(cli, example_keystore, tree_digest):
    before = tree_digest(example_keystore)

    result = cli("enclave", "create", "/not/in/policy", "--keystore", example_keystore)

    assert result.code == 2
    assert len(result.err_lines) == 1, result.err
    assert "/not/in/policy" in result.err
    assert str(EXAMPLE.name) in result.err  # names the policy file it looked in
    assert tree_digest(example_keystore) == before


def test_create_in_missing_keystore_writes_nothing(cli, keystore_dir):
    result = cli("enclave", "create", "/cell/gripper", "--keystore", keystore_dir)

    assert result.code == 2
    assert len(result.err_lines) == 1, result.err
    assert str(keystore_dir) in result.err
    assert not os.path.lexists(keystore_dir)


# --- list ------------------------------------------------------------------------------------


def test_list_table_names_every_enclave(cli, example_keystore):
    policy = load_policy(EXAMPLE)

    result = cli("enclave", "list", "--keystore", example_keystore)

    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].split() == ["enclave", "not_before", "not_after", "serial", "files"]
    rows = [line.split() for line in lines[2:]]
    assert sorted(row[0] for row in rows) == sorted(e.path for e in policy.enclaves)
    assert all(row[-1] == "ok" for row in rows)


def test_list_json_has_path_and_not_after(cli, example_keystore):
    policy = load_policy(EXAMPLE)
    now = dt.datetime.now(dt.timezone.utc)

    result = cli("enclave", "list", "--keystore", example_keystore, "--json")

    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert isinstance(data, list)
    assert sorted(e["path"] for e in data) == sorted(e.path for e in policy.enclaves)
    for entry in data:
        not_after = dt.datetime.fromisoformat(entry["not_after"])
        assert not_after.tzinfo is not None
        assert now + dt.timedelta(days=80) < not_after < now + dt.timedelta(days=91)  # 90d in the example
        assert "BEGIN" not in json.dumps(entry)  # no PEM material in the listing


def test_list_reports_missing_files(cli, example_keystore):
    (example_keystore / "enclaves/cell/gripper/permissions.p7s").unlink()

    result = cli("enclave", "list", "--keystore", example_keystore, "--json")

    assert result.code == 0, result.err
    gripper = next(e for e in json.loads(result.out) if e["path"] == "/cell/gripper")
    assert gripper["files_ok"] is False
    assert gripper["missing"] == ["permissions.p7s"]


def test_list_nonexistent_keystore(cli, keystore_dir):
    result = cli("enclave", "list", "--keystore", keystore_dir)

    assert result.code == 2
    assert result.out == ""
    assert len(result.err_lines) == 1, result.err
    assert str(keystore_dir) in result.err
    assert not os.path.lexists(keystore_dir)


def test_list_keystore_that_is_a_regular_file(cli, tmp_path):
    target = tmp_path / "ks"
    target.write_bytes(b"junk")

    result = cli("enclave", "list", "--keystore", target)

    assert result.code == 2
    assert len(result.err_lines) == 1, result.err
    assert str(target) in result.err
    assert target.read_bytes() == b"junk"


def test_list_directory_that_is_not_a_keystore(cli, tmp_path):
    (tmp_path / "ks" / "enclaves").mkdir(parents=True)

    result = cli("enclave", "list", "--keystore", tmp_path / "ks")

    assert result.code == 2
    assert len(result.err_lines) == 1, result.err
    assert "not a keystore" in result.err
    assert "public/identity_ca.cert.pem" in result.err


def test_list_corrupt_certificate_is_reported_without_hiding_the_others(cli, example_keystore):
    (example_keystore / "enclaves/cell/gripper/cert.pem").write_bytes(b"garbage\n")

    result = cli("enclave", "list", "--keystore", example_keystore)

    assert result.code == 1
    assert len(result.err_lines) == 1, result.err
    assert "cell/gripper/cert.pem" in result.err and "expected a PEM X.509 certificate" in result.err
    assert "/cell/arm_driver" in result.out and "/cell/gripper " not in result.out
