"""``cobot-security revoke``, ``crl refresh|show`` and ``audit-log verify|show``: exit codes and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cobot_security.cli.main import main

ENCLAVE = "/cell/gripper"


def test_revoke_then_show(cli, example_keystore):
    revoked = cli("revoke", ENCLAVE, "--reason", "key_compromise", "--note", "lost tablet",
                  "--keystore", example_keystore)
    shown = cli("crl", "show", "--keystore", example_keystore, "--json")
    document = json.loads(shown.out)
    assert revoked.code == 0, revoked.err
    assert revoked.out.startswith(f"revoked enclave {ENCLAVE}: certificate serial ")
    assert shown.code == 0
    assert document["crl"]["revoked"] == 1 and document["crl"]["number"] == 2
    assert document["revoked"][0]["enclave"] == ENCLAVE and document["revoked"][0]["note"] == "lost tablet"


def test_revoke_twice_is_exit_2_with_one_line(cli, example_keystore):
    cli("revoke", ENCLAVE, "--reason", "superseded", "--keystore", example_keystore)
    again = cli("revoke", ENCLAVE, "--reason", "superseded", "--keystore", example_keystore)
    assert again.code == 2
    assert len(again.err_lines) == 1
    assert "already revoked" in again.err and again.err.startswith("cobot-security revoke: error: ")


def test_revoke_unknown_enclave_is_exit_2(cli, example_keystore, tree_digest):
    before = tree_digest(example_keystore)
    result = cli("revoke", "/cell/nobody", "--reason", "unspecified", "--keystore", example_keystore)
    assert result.code == 2 and len(result.err_lines) == 1
    assert "enclave /cell/nobody: expected an enclave with a certificate" in result.err
    assert tree_digest(example_keystore) == before


def test_revoke_bad_reason_is_usage_error(cli, example_keystore, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["revoke", ENCLAVE, "--reason", "bored", "--keystore", str(example_keystore)])
    assert exited.value.code == 2
    assert "invalid choice: 'bored'" in capsys.readouterr().err


def test_revoke_without_keystore_is_exit_2(cli, keystore_dir):
    result = cli("revoke", ENCLAVE, "--reason", "unspecified", "--keystore", keystore_dir)
    assert result.code == 2 and len(result.err_lines) == 1


def test_crl_refresh_not_due_then_forced(cli, example_keystore):
    kept = cli("crl", "refresh", "--keystore", example_keystore)
    forced = cli("crl", "refresh", "--force", "--keystore", example_keystore)
    assert kept.code == 0 and kept.out.startswith("CRL not due; kept: number 1")
    assert forced.code == 0 and forced.out.startswith("CRL re-issued: number 2")


def test_crl_show_text(cli, example_keystore):
    result = cli("crl", "show", "--keystore", example_keystore)
    assert result.code == 0
    assert result.out.startswith("CRL number 1: ")
    assert ", 0 revoked" in result.out


def test_audit_log_verify_and_show(cli, example_keystore):
    cli("revoke", ENCLAVE, "--reason", "unspecified", "--keystore", example_keystore)
    verified = cli("audit-log", "verify", "--keystore", example_keystore)
    shown = cli("audit-log", "show", "--keystore", example_keystore, "--json")
    records = json.loads(shown.out)
    assert verified.code == 0 and verified.out.startswith("audit log intact: ")
    assert records[0]["event"] == "init" and records[-1]["event"] == "revoke"
    assert records[-1]["subject"] == ENCLAVE


def test_audit_log_verify_names_the_bad_line(cli, example_keystore: Path):
    log = example_keystore / ".cobot_security" / "audit.log"
    lines = log.read_text().splitlines(keepends=True)
    lines[1] = lines[1].replace('"event":"issue"', '"event":"rotate"')
    log.write_text("".join(lines))
    result = cli("audit-log", "verify", "--keystore", example_keystore)
    assert result.code == 1 and len(result.err_lines) == 1
    assert "line 2: MAC mismatch" in result.err


def test_help_texts_explain_themselves(cli, capsys):
    for argv in (["revoke", "--help"], ["crl", "refresh", "--help"], ["audit-log", "verify", "--help"]):
        with pytest.raises(SystemExit) as exited:
            main(argv)
        out = capsys.readouterr().out
        assert exited.value.code == 0 and len(out) > 300
