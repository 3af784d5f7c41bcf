"""HealthIntake with real enclave keys: forgeries are counted and dropped, a genuine ERROR stays."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from cobot_security.health.envelope import StatusRecord
from cobot_security.health.signer import HealthSigner, SignerSource
from cobot_security.health.verifier import HealthVerifier, TrustSource
from cobot_security.keystore.store import init_keystore
from cobot_security.policy.load import load_policy
from cobot_security.policy.model import WorkcellPolicy
from cobot_security.posture.freshness import ReporterTracker
from cobot_security.posture.intake import HealthIntake, supervisor_findings
from cobot_security.status import Level, worst

T0 = dt.datetime(2026, 11, 29, 12, 0, 0, tzinfo=dt.timezone.utc)
HOST = "cell_pc"  # the example cell runs arm_driver and a health_reporter there
REPORTER = "/cobot_security/health_reporter"
KEY_MODES = "cobot_security/key_modes/cell/arm_driver"


WORKCELL = Path(__file__).resolve().parents[3] / "policies" / "workcell.yaml"


@pytest.fixture(scope="module")
def policy() -> WorkcellPolicy:
    return load_policy(WORKCELL)


@pytest.fixture(scope="module")
def keystore(tmp_path_factory: pytest.TempPathFactory, policy: WorkcellPolicy) -> Path:
    root = tmp_path_factory.mktemp("intake") / "keystore"
    init_keystore(root, policy, T0 - dt.timedelta(days=1))
    return root


def _intake(keystore: Path, policy: WorkcellPolicy | None, **tracker: object) -> HealthIntake:
    trust = TrustSource(keystore)
    trust.refresh()
    verifier = HealthVerifier(max_clock_skew_s=30.0)
    verifier.set_anchor(trust.anchor)
    limits = {"stale_after_s": 3.0, "error_after_s": 6.0, **tracker}
    return HealthIntake(verifier, ReporterTracker(**limits), policy, max_statuses_per_message=50)  # type: ignore[arg-type]


def _signer(keystore: Path, enclave: str = REPORTER, node: str = "/health_reporter") -> HealthSigner:
    return SignerSource(keystore, enclave, node, HOST).current()


def _report(level: int, host: str = HOST) -> list[StatusRecord]:
    return [StatusRecord(level, KEY_MODES, "key.pem mode 0644" if level else "key.pem 0600", host,
                         (("enclave", "/cell/arm_driver"), ("reporter", "/health_reporter")))]


def _signed(signer: HealthSigner, body: list[StatusRecord], now: dt.datetime) -> list[StatusRecord]:
    return body + [signer.sign(body, now)]


def _level_of(intake: HealthIntake, now: dt.datetime, name: str = KEY_MODES) -> Level:
    return worst(f.level for f in intake.tracker.current(now) if f.name == name)


def test_forged_ok_never_hides_a_genuine_error(keystore: Path, policy: WorkcellPolicy) -> None:
    intake = _intake(keystore, policy)
    genuine = _signer(keystore)
    captured_ok = _signed(genuine, _report(0), T0)  # an old genuine OK, captured by the attacker
    assert intake.accept(captured_ok, T0) == f"{HOST}{REPORTER}"
    assert intake.accept(_signed(genuine, _report(2), T0 + dt.timedelta(seconds=1)), T0 + dt.timedelta(seconds=1))

    now = T0 + dt.timedelta(seconds=2)
    arm = _signer(keystore, "/cell/arm_driver", "/cell/arm_driver")
    arm_message = _signed(arm, _report(0), now)
    as_reporter = arm_message[-1]
    claimed = dataclasses.replace(as_reporter, name=f"cobot_security/health_signature{REPORTER}", values=tuple(
        (k, REPORTER if k == "reporter" else v) for k, v in as_reporter.values))
    forgeries = {
        "unsigned": _report(0),
        "bad_certificate": arm_message[:-1] + [claimed],
        "replayed": captured_ok,
        "bad_signature": _report(0) + [_signed(genuine, _report(2), now)[-1]],  # genuine signature, other body
    }
    for reason, forged in forgeries.items():
        assert intake.accept(forged, now) is None, reason
        assert _level_of(intake, now) == Level.ERROR, reason
    assert {r: intake.counts.dropped_messages[r] for r in forgeries} == dict.fromkeys(forgeries, 1)
    assert intake.counts.dropped_statuses["unsigned"] == 1
    # the arm's own key may report about the arm, but an OK from it still does not hide the ERROR
    assert intake.accept(arm_message, now) == f"{HOST}/cell/arm_driver"
    assert _level_of(intake, now) == Level.ERROR


def test_out_of_scope_and_malformed_statuses_are_counted(keystore: Path, policy: WorkcellPolicy) -> None:
    intake = _intake(keystore, policy)
    arm = _signer(keystore, "/cell/arm_driver", "/cell/arm_driver")
    body = [
        StatusRecord(0, "cobot_security/cert_expiry/cell/arm_driver", "ok", HOST, ()),
        StatusRecord(2, "cobot_security/cert_expiry/cell/gripper", "fake", HOST, ()),
        StatusRecord(0, "cobot_security/keystore_integrity/keystore", "fake ok", HOST, ()),
        StatusRecord(0, "cobot_security/cert_chain/cell/arm_driver", "other host", "otherpc", ()),
        StatusRecord(9, "cobot_security/crl/cell/arm_driver", "bad level", HOST, ()),
        StatusRecord(0, "cobot_security/reporter_liveness/cell/arm_driver", "liveness is mine", HOST, ()),
    ]
    assert intake.accept(_signed(arm, body, T0), T0)
    names = {f.name for f in intake.tracker.current(T0) if f.check != "reporter_liveness"}
    assert names == {"cobot_security/cert_expiry/cell/arm_driver"}
    assert intake.counts.dropped_statuses == {"out_of_scope": 4, "malformed": 1}
    assert intake.counts.accepted_statuses == 1


def test_limits_statuses_per_message_and_reporters(keystore: Path, policy: WorkcellPolicy) -> None:
    intake = _intake(keystore, policy, max_reporters=1)
    reporter = _signer(keystore)
    assert intake.accept(_signed(reporter, _report(0) * 51, T0), T0) is None
    assert intake.counts.dropped_messages["too_many_statuses"] == 1
    assert intake.accept(_signed(reporter, _report(0), T0), T0)
    other_host = SignerSource(keystore, REPORTER, "/health_reporter", "otherpc").current()
    assert intake.accept(_signed(other_host, _report(0, "otherpc"), T0), T0) is None
    assert intake.counts.dropped_messages["reporter_limit"] == 1
    assert intake.tracker.reporters() == [f"{HOST}{REPORTER}"]


def test_silent_reporter_is_forgotten_after_its_error_was_shown(keystore: Path, policy: WorkcellPolicy) -> None:
    intake = _intake(keystore, policy, forget_after_s=60.0, max_reporters=1)
    reporter = _signer(keystore)
    intake.accept(_signed(reporter, _report(0), T0), T0)
    late = T0 + dt.timedelta(seconds=61)
    assert intake.forget(late) == []  # its ERROR has not been shown by an evaluation yet
    liveness = [f for f in intake.tracker.current(late) if f.check == "reporter_liveness"]
    assert [f.level for f in liveness] == [Level.ERROR]
    assert intake.forget(late) == [f"{HOST}{REPORTER}"]
    assert intake.tracker.current(late) == []
    newcomer = SignerSource(keystore, REPORTER, "/health_reporter", "otherpc").current()
    assert intake.accept(_signed(newcomer, _report(0, "otherpc"), late), late)  # room again


def test_supervisor_status_counts_by_reason(keystore: Path, policy: WorkcellPolicy) -> None:
    intake = _intake(keystore, policy)
    malformed, status = supervisor_findings(intake, "", [], 0, 0)
    assert (malformed.level, status.level) == (Level.OK, Level.OK)
    intake.accept(_report(0), T0)
    intake.drop_message("oversized")
    _malformed, status = supervisor_findings(intake, "", [], 0, 0)
    assert status.level == Level.WARN
    assert status.value("dropped_unsigned") == "1" and status.value("dropped_oversized") == "1"
    _malformed, status = supervisor_findings(intake, "CRL missing", [], 0, 0)
    assert status.level == Level.ERROR and "CRL missing" in status.message
