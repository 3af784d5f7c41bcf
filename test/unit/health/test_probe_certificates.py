"""probe_certificates: expiry boundaries (before / at / after warn, error, expiry) and chain checks."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable

import pytest

from cobot_security import checks
from cobot_security.health.certificate_probes import probe_certificates
from cobot_security.keystore.layout import KeystoreLayout
from cobot_security.policy.model import WorkcellPolicy
from cobot_security.status import Finding, Level

SECOND = dt.timedelta(seconds=1)
DAY = dt.timedelta(days=1)


def by_check(findings: list[Finding], check: str, subject: str) -> Finding:
    matches = [f for f in findings if f.check == check and f.subject == subject]
    assert len(matches) == 1, findings
    return matches[0]


def not_after(issued: dt.datetime) -> dt.datetime:
    """The enclave certificates' not_after: the policy's 90 days (the CA lives longer)."""
    return issued + dt.timedelta(days=90)


@pytest.mark.parametrize(
    ("offset", "level"),
    [
        (-31 * DAY, Level.OK),
        (-30 * DAY - SECOND, Level.OK),
        (-30 * DAY, Level.WARN),
        (-30 * DAY + SECOND, Level.WARN),
        (-7 * DAY - SECOND, Level.WARN),
        (-7 * DAY, Level.ERROR),
        (-7 * DAY + SECOND, Level.ERROR),
        (-SECOND, Level.ERROR),
        (dt.timedelta(0), Level.ERROR),
        (SECOND, Level.ERROR),
    ],
)
def test_expiry_boundaries(layout: KeystoreLayout, policy: WorkcellPolicy, issued: dt.datetime,
                           offset: dt.timedelta, level: Level) -> None:
    now = not_after(issued) + offset
    finding = by_check(probe_certificates(layout, policy, now), checks.CERT_EXPIRY, "/gripper")
    assert finding.level == level, finding.message
    assert finding.value("enclave") == "/gripper"
    assert finding.value("not_after") == "2027-02-27T12:00:00+00:00"


def test_values_and_messages(layout: KeystoreLayout, policy: WorkcellPolicy, issued: dt.datetime) -> None:
    ok = by_check(probe_certificates(layout, policy, issued), checks.CERT_EXPIRY, "/cell/arm_driver")
    assert (ok.level, ok.value("days_left")) == (Level.OK, "90")
    expired = by_check(probe_certificates(layout, policy, issued + 91 * DAY), checks.CERT_EXPIRY, "/gripper")
    assert expired.value("days_left") == "-1"
    assert "expired" in expired.message


def test_custom_thresholds(layout: KeystoreLayout, policy: WorkcellPolicy, issued: dt.datetime) -> None:
    now = issued + 80 * DAY  # 10 days left
    found = probe_certificates(layout, policy, now, warn_days=5, error_days=2)
    assert by_check(found, checks.CERT_EXPIRY, "/gripper").level == Level.OK
    found = probe_certificates(layout, policy, now, warn_days=20, error_days=10)
    assert by_check(found, checks.CERT_EXPIRY, "/gripper").level == Level.ERROR


def test_not_yet_valid(layout: KeystoreLayout, policy: WorkcellPolicy, issued: dt.datetime) -> None:
    # Certificates are backdated by one hour.
    just_before = issued - dt.timedelta(hours=1) - SECOND
    finding = by_check(probe_certificates(layout, policy, just_before), checks.CERT_EXPIRY, "/gripper")
    assert finding.level == Level.ERROR
    assert "not valid before" in finding.message
    at_start = by_check(probe_certificates(layout, policy, just_before + SECOND), checks.CERT_EXPIRY, "/gripper")
    assert at_start.level == Level.OK


def test_keystores_issued_at_different_times(build_keystore: Callable[..., KeystoreLayout],
                                             policy: WorkcellPolicy, issued: dt.datetime) -> None:
    now = issued + 70 * DAY
    old = build_keystore(policy, issued)  # 20 days left
    new = build_keystore(policy, issued + 60 * DAY)  # 80 days left
    assert by_check(probe_certificates(old, policy, now), checks.CERT_EXPIRY, "/gripper").level == Level.WARN
    assert by_check(probe_certificates(new, policy, now), checks.CERT_EXPIRY, "/gripper").level == Level.OK


def test_missing_cert(layout: KeystoreLayout, policy: WorkcellPolicy, issued: dt.datetime) -> None:
    (layout.enclave_dir("/gripper") / "cert.pem").unlink()
    found = probe_certificates(layout, policy, issued)
    for check in (checks.CERT_EXPIRY, checks.CERT_CHAIN):
        finding = by_check(found, check, "/gripper")
        assert finding.level == Level.ERROR
        assert "missing" in finding.message
    assert by_check(found, checks.CERT_CHAIN, "/cell/arm_driver").level == Level.OK


def test_enclave_missing_from_keystore(build_keystore: Callable[..., KeystoreLayout],
                                       policy_factory: Callable[..., WorkcellPolicy], issued: dt.datetime) -> None:
    layout = build_keystore(policy_factory("/gripper"))
    found = probe_certificates(layout, policy_factory("/gripper", "/cell/camera"), issued)
    assert by_check(found, checks.CERT_EXPIRY, "/cell/camera").level == Level.ERROR


def test_chain_foreign_ca(build_keystore: Callable[..., KeystoreLayout], layout: KeystoreLayout,
                          policy: WorkcellPolicy, issued: dt.datetime) -> None:
    foreign = build_keystore(policy)
    shutil.copy(foreign.enclave_dir("/gripper") / "cert.pem", layout.enclave_dir("/gripper") / "cert.pem")
    finding = by_check(probe_certificates(layout, policy, issued), checks.CERT_CHAIN, "/gripper")
    assert finding.level == Level.ERROR
    assert "signature" in finding.message  # same CA name, different key


def test_chain_wrong_subject(layout: KeystoreLayout, policy: WorkcellPolicy, issued: dt.datetime) -> None:
    shutil.copy(layout.enclave_dir("/cell/arm_driver") / "cert.pem", layout.enclave_dir("/gripper") / "cert.pem")
    finding = by_check(probe_certificates(layout, policy, issued), checks.CERT_CHAIN, "/gripper")
    assert finding.level == Level.ERROR
    assert finding.message == "subject: expected CN=/gripper, got CN=/cell/arm_driver"
