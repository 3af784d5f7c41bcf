"""CLI: rotate (plan table, --dry-run changes nothing), history, rollback, ca renew/rollover."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

CliRunner = Callable[..., Any]
TreeDigest = Callable[[Path], dict[str, tuple[object, ...]]]


def test_rotate_dry_run_prints_plan_and_changes_nothing(cli: CliRunner, example_keystore: Path,
                                                        tree_digest: TreeDigest) -> None:
    before = tree_digest(example_keystore)
    result = cli("rotate", "--all", "--dry-run", "--keystore", example_keystore)
    assert result.code == 0, result.err
    assert result.out.splitlines()[0].split() == ["enclave", "reason", "not_after", "days_left"]
    assert "requested" in result.out and "(dry run: nothing changed)" in result.out
    assert tree_digest(example_keystore) == before


def test_rotate_default_plan_is_empty_on_a_fresh_keystore(cli: CliRunner, example_keystore: Path,
                                                          tree_digest: TreeDigest) -> None:
    before = tree_digest(example_keystore)
    result = cli("rotate", "--keystore", example_keystore)
    assert result.code == 0, result.err
    assert "0 enclave(s) to rotate" in result.out
    assert tree_digest(example_keystore) == before


def test_rotate_one_enclave_then_history_and_rollback(cli: CliRunner, example_keystore: Path,
                                                      tree_digest: TreeDigest) -> None:
    listing = cli("enclave", "list", "--keystore", example_keystore)
    enclave = listing.out.splitlines()[2].split()[0]
    cert = example_keystore / "enclaves" / enclave.lstrip("/") / "cert.pem"
    original = cert.read_bytes()
    result = cli("rotate", "--enclave", enclave, "--keystore", example_keystore)
    assert result.code == 0, result.err
    assert f"rotated {enclave}" in result.out and "restart" in result.out
    assert cert.read_bytes() != original
    history = cli("history", enclave, "--keystore", example_keystore)
    assert history.code == 0 and len(history.out.splitlines()) == 3
    back = cli("rollback", enclave, "--keystore", example_keystore)
    assert back.code == 0, back.err
    assert cert.read_bytes() == original


def test_rotate_unknown_enclave_is_bad_input(cli: CliRunner, example_keystore: Path) -> None:
    result = cli("rotate", "--enclave", "/no/such", "--keystore", example_keystore)
    assert result.code == 2
    assert "enclave /no/such" in result.err


def test_rollback_without_history_fails_cleanly(cli: CliRunner, example_keystore: Path) -> None:
    listing = cli("enclave", "list", "--keystore", example_keystore)
    enclave = listing.out.splitlines()[2].split()[0]
    result = cli("rollback", enclave, "--keystore", example_keystore)
    assert result.code == 2 and "no history" in result.err


def test_ca_renew_and_rollover(cli: CliRunner, example_keystore: Path, tmp_path: Path) -> None:
    renew = cli("ca", "renew", "--identity", "--keystore", example_keystore)
    assert renew.code == 0, renew.err
    assert renew.out.startswith("renewed identity CA")
    plan = cli("ca", "rollover", "--plan", "--keystore", example_keystore)
    assert plan.code == 0 and "Stop ALL nodes" in plan.out
    staged = tmp_path / "ks.next"
    stage = cli("ca", "rollover", "--stage", staged, "--keystore", example_keystore)
    assert stage.code == 0, stage.err
    new_ca = (staged / "public" / "identity_ca.cert.pem").read_bytes()
    swap = cli("ca", "rollover", "--swap", staged, "--keystore", example_keystore)
    assert swap.code == 0, swap.err
    assert (example_keystore / "public" / "identity_ca.cert.pem").read_bytes() == new_ca
    assert list(tmp_path.glob("ks.pre-rollover-*"))
