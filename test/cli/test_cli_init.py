"""``cobot-security init``: keystore layout and modes, refusal without --force, backups, single CA, passphrase."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cryptography import x509

from cobot_security.keystore.layout import ENCLAVE_FILES, ENCLAVE_LINKS
from cobot_security.policy.load import load_policy

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "policies" / "workcell.yaml"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_init_creates_every_enclave_with_private_modes(cli, keystore_dir):
    policy = load_policy(EXAMPLE)

    result = cli("init", "--keystore", keystore_dir)

    assert result.code == 0, result.err
    assert result.err == ""
    assert f"{len(policy.enclaves)} enclave(s)" in result.out
    assert str(keystore_dir) in result.out
    for enclave in policy.enclaves:
        directory = keystore_dir / "enclaves" / enclave.path.lstrip("/")
        assert directory.is_dir(), enclave.path
        for name in ENCLAVE_FILES:
            assert (directory / name).exists(), f"{enclave.path}/{name}"  # symlinks resolve
        for name in ENCLAVE_LINKS:
            assert (directory / name).is_symlink(), f"{enclave.path}/{name}"
        assert _mode(directory / "key.pem") == 0o600, enclave.path
        cert = x509.load_pem_x509_certificate((directory / "cert.pem").read_bytes())
        assert cert.subject.rfc4514_string() == f"CN={enclave.path}"
    assert _mode(keystore_dir / "private") == 0o700
    keys = sorted(p.name for p in (keystore_dir / "private").iterdir())
    # The two CA keys, and the audit log's MAC key (secret, so private as well).
    assert keys == ["audit.key", "identity_ca.key.pem", "permissions_ca.key.pem"]
    for key in (keystore_dir / "private").iterdir():
        assert _mode(key) == 0o600, key.name
    for key in (keystore_dir / "private").glob("*.key.pem"):
        assert key.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----"), key.name  # no passphrase given
    # nothing staged is left beside the keystore
    assert sorted(p.name for p in keystore_dir.parent.iterdir()) == ["ks"]


def test_second_init_without_force_refuses_and_changes_nothing(cli, example_keystore, tree_digest):
    before = tree_digest(example_keystore)

    result = cli("init", "--keystore", example_keystore)

    assert result.code == 2
    assert result.out == ""
    assert len(result.err_lines) == 1, result.err
    assert result.err.startswith("cobot-security init: error: ")
    assert str(example_keystore) in result.err
    assert "--force" in result.err
    assert tree_digest(example_keystore) == before
    assert sorted(p.name for p in example_keystore.parent.iterdir()) == ["ks"]  # no backup, no staging


def test_init_force_replaces_and_keeps_backup(cli, example_keystore, tree_digest):
    before = tree_digest(example_keystore)
    old_ca = (example_keystore / "public" / "identity_ca.cert.pem").read_bytes()

    result = cli("init", "--keystore", example_keystore, "--force")

    assert result.code == 0, result.err
    backups = [p for p in example_keystore.parent.iterdir() if p.name.startswith("ks.bak-")]
    assert len(backups) == 1
    assert tree_digest(backups[0]) == before  # the old keystore, byte for byte
    assert (example_keystore / "public" / "identity_ca.cert.pem").read_bytes() != old_ca


def test_init_into_empty_existing_directory_needs_no_force(cli, keystore_dir):
    keystore_dir.mkdir()

    result = cli("init", "--keystore", keystore_dir, "--no-enclaves")

    assert result.code == 0, result.err
    assert "0 enclave(s)" in result.out
    assert (keystore_dir / "enclaves" / "governance.p7s").is_file()
    assert not any(p.name.startswith("ks.bak-") for p in keystore_dir.parent.iterdir())


def test_init_onto_regular_file_is_bad_input(cli, tmp_path):
    target = tmp_path / "ks"
    target.write_bytes(b"not a keystore")

    result = cli("init", "--keystore", target)

    assert result.code == 2
    assert len(result.err_lines) == 1, result.err
    assert str(target) in result.err
    assert target.read_bytes() == b"not a keystore"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ks"]


def test_init_single_ca_has_sros2_layout(cli, keystore_dir):
    result = cli("init", "--keystore", keystore_dir, "--single-ca")

    assert result.code == 0, result.err
    public, private = keystore_dir / "public", keystore_dir / "private"
    ca_cert = public / "ca.cert.pem"
    assert ca_cert.is_file() and not ca_cert.is_symlink()
    for link in ("identity_ca.cert.pem", "permissions_ca.cert.pem"):
        assert (public / link).is_symlink()
        assert os.readlink(public / link) == "ca.cert.pem"
    assert (private / "ca.key.pem").is_file() and not (private / "ca.key.pem").is_symlink()
    assert _mode(private / "ca.key.pem") == 0o600
    for link in ("identity_ca.key.pem", "permissions_ca.key.pem"):
        assert os.readlink(private / link) == "ca.key.pem"
    # every enclave certificate is issued by that one CA
    ca = x509.load_pem_x509_certificate(ca_cert.read_bytes())
    cert = x509.load_pem_x509_certificate((keystore_dir / "enclaves/cell/arm_driver/cert.pem").read_bytes())
    assert cert.issuer == ca.subject
    cert.verify_directly_issued_by(ca)


def test_single_ca_keystore_can_issue_enclaves(cli, keystore_dir):
    assert cli("init", "--keystore", keystore_dir, "--single-ca").code == 0

    result = cli("enclave", "create", "/cell/gripper", "--keystore", keystore_dir, "--force")

    assert result.code == 0, result.err
    assert "created enclave /cell/gripper" in result.out


def test_init_with_passphrase_encrypts_ca_keys_only(cli, keystore_dir, monkeypatch):
    secret = "correct-horse-battery-staple"
    monkeypatch.setenv("CS_TEST_PASSPHRASE", secret)

    result = cli("init", "--keystore", keystore_dir, "--passphrase-env", "CS_TEST_PASSPHRASE")

    assert result.code == 0, result.err
    for key in ("identity_ca.key.pem", "permissions_ca.key.pem"):
        pem = (keystore_dir / "private" / key).read_bytes()
        assert pem.splitlines()[0] == b"-----BEGIN ENCRYPTED PRIVATE KEY-----", key
    # enclave keys are loaded by rmw without a passphrase, so they stay unencrypted
    enclave_key = (keystore_dir / "enclaves/cell/arm_driver/key.pem").read_bytes()
    assert enclave_key.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert secret not in result.out + result.err


def test_init_passphrase_env_unset_names_the_flag(cli, keystore_dir, monkeypatch):
    monkeypatch.delenv("CS_TEST_UNSET_VAR", raising=False)

    result = cli("init", "--keystore", keystore_dir, "--passphrase-env", "CS_TEST_UNSET_VAR")

    assert result.code == 2
    assert len(result.err_lines) == 1, result.err
    assert "--passphrase-env" in result.err
    assert "CS_TEST_UNSET_VAR" in result.err
    assert not os.path.lexists(keystore_dir)
    assert list(keystore_dir.parent.iterdir()) == []


def test_init_passphrase_env_empty_is_bad_input(cli, keystore_dir, monkeypatch):
    monkeypatch.setenv("CS_TEST_EMPTY_VAR", "")

    result = cli("init", "--keystore", keystore_dir, "--passphrase-env", "CS_TEST_EMPTY_VAR")

    assert result.code == 2
    assert "--passphrase-env" in result.err
    assert not os.path.lexists(keystore_dir)
