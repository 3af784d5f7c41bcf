"""plan_reconcile / apply_reconcile / reconcile_findings with frozen time (no rclpy, no sleep)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from cobot_security.keystore.reconcile import (
    CERT_ROTATION,
    CREATE,
    CRL_REFRESH,
    ORPHAN,
    RESIGN,
    RESTART_REQUIRED,
    ROTATE,
    Action,
    apply_reconcile,
    plan_reconcile,
    reconcile_findings,
)
from cobot_security.keystore.revocation import crl_status, refresh_crl
from cobot_security.keystore.store import Keystore, init_keystore
from cobot_security.policy.model import WorkcellPolicy
from cobot_security.status import Level

ISSUED = dt.datetime(2026, 1, 10, 12, 0, 0, tzinfo=dt.timezone.utc)
DAY = dt.timedelta(days=1)


def _keystore(root: Path, policy: WorkcellPolicy, issued: dt.datetime = ISSUED) -> Keystore:
    """A keystore for ``policy`` issued at ``issued`` (with its first CRL, not due yet)."""
    keystore = init_keystore(root, policy, issued)
    refresh_crl(keystore, issued, policy)  # a no-op where init already wrote the CRL
    assert not crl_status(keystore.layout, issued).due
    return keystore


def _cert(root: Path, enclave: str) -> bytes:
    return (root / "enclaves" / enclave.lstrip("/") / "cert.pem").read_bytes()


def _states(findings: list) -> dict[str, tuple[Level, str | None]]:
    return {f.subject: (f.level, f.value("state")) for f in findings if f.check == CERT_ROTATION}


@pytest.fixture
def ks(tmp_path: Path, policy: WorkcellPolicy) -> Keystore:
    return _keystore(tmp_path / "ks", policy)


def test_fresh_keystore_needs_nothing(ks: Keystore, policy: WorkcellPolicy) -> None:
    plan = plan_reconcile(ks, policy, ISSUED + DAY)

    assert plan.empty
    assert plan.actions == ()
    assert [c.enclave for c in plan.certificates] == ["/cell/arm_driver", "/gripper"]
    assert all(c.days_left == 89 and c.in_policy for c in plan.certificates)
    assert _states(reconcile_findings(policy, plan)) == {
        "/cell/arm_driver": (Level.OK, "ok"), "/gripper": (Level.OK, "ok")}


def test_plan_writes_nothing(ks: Keystore, policy_factory) -> None:
    before = {p: p.read_bytes() for p in ks.layout.root.rglob("*") if p.is_file() and not p.is_symlink()}
    plan_reconcile(ks, policy_factory("/cell/arm_driver", "/cell/new"), ISSUED + 70 * DAY)
    after = {p: p.read_bytes() for p in ks.layout.root.rglob("*") if p.is_file() and not p.is_symlink()}
    assert after == before


def test_policy_adds_an_enclave_creates_it(ks: Keystore, policy_factory) -> None:
    grown = policy_factory("/cell/arm_driver", "/gripper", "/cell/camera")
    now = ISSUED + DAY

    plan = plan_reconcile(ks, grown, now)
    assert plan.actions == (Action(CREATE, "/cell/camera", "missing"),)
    assert _states(reconcile_findings(grown, plan))["/cell/camera"] == (Level.ERROR, "missing")

    outcome = apply_reconcile(ks, grown, plan, now, allow_rotate=False)
    assert outcome.created == ("/cell/camera",)
    assert outcome.restart_required == ()
    assert (ks.layout.root / "enclaves" / "cell" / "camera" / "cert.pem").is_file()
    assert plan_reconcile(ks, grown, now).empty


def test_changed_grant_resigns_only_that_enclave(ks: Keystore, policy: WorkcellPolicy) -> None:
    arm = policy.enclaves[0]
    node = dataclasses.replace(arm.nodes[0], publish=arm.nodes[0].publish + ("joint_states",))
    changed = dataclasses.replace(policy, enclaves=(dataclasses.replace(arm, nodes=(node,)), policy.enclaves[1]))
    gripper_cert = _cert(ks.layout.root, "/gripper")
    now = ISSUED + DAY

    plan = plan_reconcile(ks, changed, now)
    assert plan.actions == (Action(RESIGN, "/cell/arm_driver", "policy_changed"),)

    outcome = apply_reconcile(ks, changed, plan, now, allow_rotate=False)  # re-sign never waits for rotation
    assert outcome.resigned == ("/cell/arm_driver",)
    xml = (ks.layout.root / "enclaves" / "cell" / "arm_driver" / "permissions.xml").read_text()
    assert "rt/cell/joint_states" in xml
    assert _cert(ks.layout.root, "/gripper") == gripper_cert
    assert plan_reconcile(ks, changed, now).empty
    restart = [f for f in reconcile_findings(changed, plan_reconcile(ks, changed, now), outcome)
               if f.check == RESTART_REQUIRED]
    assert [(f.subject, f.level, f.value("nodes")) for f in restart] == [
        ("/cell/arm_driver", Level.WARN, "/cell/arm_driver")]


@pytest.mark.parametrize(("age", "due"), [(60 * DAY - dt.timedelta(seconds=1), False), (60 * DAY, True),
                                          (60 * DAY + dt.timedelta(seconds=1), True)],
                         ids=["just_before", "at", "just_after"])
def test_renew_window_boundary(ks: Keystore, policy: WorkcellPolicy, age: dt.timedelta, due: bool) -> None:
    plan = plan_reconcile(ks, policy, ISSUED + age)
    rotations = [a for a in plan.actions if a.kind == ROTATE]
    assert bool(rotations) is due
    if due:
        assert rotations == [Action(ROTATE, "/cell/arm_driver", "due"), Action(ROTATE, "/gripper", "due")]


def test_keystore_issued_70_days_ago_is_due_and_rotates_only_when_allowed(
        tmp_path: Path, policy: WorkcellPolicy) -> None:
    now = ISSUED + 70 * DAY
    ks = _keystore(tmp_path / "ks", policy)
    old = _cert(ks.layout.root, "/cell/arm_driver")

    plan = plan_reconcile(ks, policy, now)
    kinds = {(a.kind, a.enclave) for a in plan.actions}
    assert {(ROTATE, "/cell/arm_driver"), (ROTATE, "/gripper")} <= kinds
    assert _states(reconcile_findings(policy, plan))["/cell/arm_driver"] == (Level.WARN, "due")
    assert {c.enclave: c.days_left for c in plan.certificates}["/cell/arm_driver"] == 20

    held = apply_reconcile(ks, policy, plan, now, allow_rotate=False)
    assert held.deferred == ("/cell/arm_driver", "/gripper")
    assert held.rotated == ()
    assert _cert(ks.layout.root, "/cell/arm_driver") == old

    done = apply_reconcile(ks, policy, plan_reconcile(ks, policy, now), now, allow_rotate=True)
    assert done.rotated == ("/cell/arm_driver", "/gripper")
    assert _cert(ks.layout.root, "/cell/arm_driver") != old
    after = plan_reconcile(ks, policy, now)
    assert not [a for a in after.actions if a.kind == ROTATE]
    assert {c.enclave: c.not_after for c in after.certificates}["/cell/arm_driver"] == now + 90 * DAY
    states = _states(reconcile_findings(policy, after, done))
    assert states["/cell/arm_driver"] == (Level.OK, "rotated")


def test_expired_certificate_is_an_error(ks: Keystore, policy: WorkcellPolicy) -> None:
    plan = plan_reconcile(ks, policy, ISSUED + 91 * DAY)
    finding = [f for f in reconcile_findings(policy, plan) if f.subject == "/gripper"][0]
    assert (finding.level, finding.value("state")) == (Level.ERROR, "due")
    assert "expired" in finding.message


def test_enclave_the_policy_drops_is_reported_never_removed(ks: Keystore, policy_factory) -> None:
    shrunk = policy_factory("/cell/arm_driver")
    now = ISSUED + DAY

    plan = plan_reconcile(ks, shrunk, now)
    assert plan.actions == (Action(ORPHAN, "/gripper", plan.actions[0].reason),)
    assert "policy" in plan.actions[0].reason

    outcome = apply_reconcile(ks, shrunk, plan, now, allow_rotate=True)
    assert outcome.orphans == ("/gripper",)
    assert not outcome.changed
    assert (ks.layout.root / "enclaves" / "gripper" / "cert.pem").is_file()
    assert _states(reconcile_findings(shrunk, plan))["/gripper"] == (Level.WARN, "orphan")


def test_due_crl_is_refreshed(ks: Keystore, policy: WorkcellPolicy) -> None:
    next_update = crl_status(ks.layout, ISSUED).next_update
    assert next_update is not None
    now = next_update - DAY  # the last third of a 7-day interval

    plan = plan_reconcile(ks, policy, now)
    assert [a.kind for a in plan.actions] == [CRL_REFRESH]

    outcome = apply_reconcile(ks, policy, plan, now, allow_rotate=False)
    assert outcome.crl_refreshed
    assert crl_status(ks.layout, now).next_update == now + policy.lifetimes.crl_next_update
    assert plan_reconcile(ks, policy, now).empty


def test_due_crl_refresh_by_reconcile_keeps_revocations(ks: Keystore, policy: WorkcellPolicy) -> None:
    from cobot_security.keystore.revocation import revoke_enclave

    revoke_enclave(ks, "/gripper", "key_compromise", ISSUED, policy)
    revoked = crl_status(ks.layout, ISSUED)
    assert revoked.revoked == 1
    next_update = revoked.next_update
    assert next_update is not None
    now = next_update - DAY

    outcome = apply_reconcile(ks, policy, plan_reconcile(ks, policy, now), now, allow_rotate=False)
    assert outcome.crl_refreshed
    status = crl_status(ks.layout, now)
    assert (status.revoked, status.next_update) == (1, now + policy.lifetimes.crl_next_update)


def test_missing_crl_is_planned(tmp_path: Path, policy: WorkcellPolicy) -> None:
    ks = init_keystore(tmp_path / "ks", policy, ISSUED)
    ks.layout.crl.unlink(missing_ok=True)
    plan = plan_reconcile(ks, policy, ISSUED)
    assert [(a.kind, a.reason) for a in plan.actions] == [(CRL_REFRESH, "missing")]


def test_plan_as_dict_is_json_ready(ks: Keystore, policy: WorkcellPolicy) -> None:
    import json

    body = json.loads(json.dumps(plan_reconcile(ks, policy, ISSUED + 70 * DAY).as_dict()))
    assert body["now"] == "2026-03-21T12:00:00+00:00"
    assert {"kind": "rotate", "enclave": "/gripper", "reason": "due"} in body["actions"]
    assert body["certificates"][0]["days_left"] == 20


def test_held_lock_is_a_recorded_failure_not_an_exception(ks: Keystore, policy: WorkcellPolicy) -> None:
    from cobot_security.atomic import KeystoreLock

    now = ISSUED + 70 * DAY
    quick = Keystore.open(ks.layout.root, lock_timeout_s=0.2)
    plan = plan_reconcile(quick, policy, now)
    with KeystoreLock(ks.layout.lock, 1.0):
        outcome = apply_reconcile(quick, policy, plan, now, allow_rotate=True)
    assert outcome.rotated == ()
    assert {subject for subject, _ in outcome.failures} >= {"/cell/arm_driver", "/gripper"}
    finding = [f for f in reconcile_findings(policy, plan, outcome) if f.subject == "/gripper"][0]
    assert finding.level == Level.ERROR
    assert "change failed" in finding.message
