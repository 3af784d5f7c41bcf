"""``cobot-security reconcile``: the plan table, --dry-run writes nothing, orphans are listed."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from cobot_security.keystore.store import init_keystore
from cobot_security.policy.load import load_policy
from cobot_security.resources import shipped_file

WORKCELL = shipped_file("policies/workcell.yaml")


def _policy_without_vision(tmp_path: Path) -> Path:
    """The example policy with the /cell/vision enclave removed (so it becomes an orphan)."""
    text = WORKCELL.read_text()
    start = text.index("  /cell/vision:")
    rest = text[start + 1:]
    nxt = [i for i in (rest.find("\n  /"), rest.find("\n  # ")) if i >= 0]
    end = start + 1 + min(nxt) if nxt else len(text)
    path = tmp_path / "shrunk.yaml"
    path.write_text(text[:start] + text[end + 1:])
    return path


def test_matching_keystore_has_nothing_to_do(cli, example_keystore: Path) -> None:
    result = cli("reconcile", "--keystore", example_keystore, "--dry-run")
    assert result.code == 0, result.err
    assert "nothing to do" in result.out


def test_dry_run_prints_the_plan_and_writes_nothing(cli, tree_digest, tmp_path: Path) -> None:
    keystore = tmp_path / "old"
    init_keystore(keystore, load_policy(WORKCELL), dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=70))
    shrunk = _policy_without_vision(tmp_path)
    before = tree_digest(keystore)

    result = cli("reconcile", "--keystore", keystore, "--policy", shrunk, "--dry-run", "--rotate-due")

    assert result.code == 0, result.err
    assert tree_digest(keystore) == before
    lines = result.out.splitlines()
    assert lines[0].split() == ["action", "enclave", "reason"]
    assert any(line.split()[:3] == ["rotate", "/cell/arm_driver", "due"] for line in lines)
    assert any(line.split()[:2] == ["orphan", "/cell/vision"] for line in lines)
    assert any(line.split()[:2] == ["crl_refresh", "/keystore"] for line in lines)


def test_apply_rotates_only_with_rotate_due_and_keeps_orphans(cli, tree_digest, tmp_path: Path) -> None:
    keystore = tmp_path / "old"
    init_keystore(keystore, load_policy(WORKCELL), dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=70))
    shrunk = _policy_without_vision(tmp_path)
    arm_cert = keystore / "enclaves" / "cell" / "arm_driver" / "cert.pem"
    old = arm_cert.read_bytes()

    held = cli("reconcile", "--keystore", keystore, "--policy", shrunk)
    assert held.code == 0, held.err
    assert "due, not rotated (pass --rotate-due): /cell/arm_driver" in held.out
    assert "orphan, not removed: /cell/vision" in held.out
    assert arm_cert.read_bytes() == old

    done = cli("reconcile", "--keystore", keystore, "--policy", shrunk, "--rotate-due")
    assert done.code == 0, done.err
    assert "rotated: /cell/arm_driver" in done.out
    assert arm_cert.read_bytes() != old
    assert (keystore / "enclaves" / "cell" / "vision" / "cert.pem").is_file()

    plan = cli("reconcile", "--keystore", keystore, "--policy", shrunk, "--dry-run", "--json")
    body = json.loads(plan.out)
    assert [(a["kind"], a["enclave"]) for a in body["actions"]] == [("orphan", "/cell/vision")]


def test_missing_keystore_is_exit_2(cli, tmp_path: Path) -> None:
    result = cli("reconcile", "--keystore", tmp_path / "nothing", "--dry-run")
    assert result.code == 2
    assert len(result.err_lines) == 1
