"""update_metrics over real PostureReports: values read back from the private registry (no HTTP)."""

from __future__ import annotations

from export_builders import cert, findings, report

from cobot_security.checks import CERT_EXPIRY
from cobot_security.export.metrics import cert_days_left, create_metrics, update_metrics
from cobot_security.status import Finding, Level


def _value(gauges: object, name: str, **labels: str) -> float | None:
    return gauges.registry.get_sample_value(name, labels)  # type: ignore[attr-defined]


def test_fresh_registry_fails_closed_and_is_private() -> None:
    a, b = create_metrics(), create_metrics()  # two registries, no duplicate-name clash
    assert _value(a, "cobot_posture_score") == 0
    assert _value(a, "cobot_posture_level") == Level.ERROR
    assert _value(b, "process_cpu_seconds_total") is None  # not the global registry


def test_values_from_report_and_findings() -> None:
    gauges = create_metrics()
    rep = report(keys=Level.WARN, stale=1)
    update_metrics(gauges, rep, findings(keys=Level.WARN, stale=1), stale=1, open_incidents=2)
    assert _value(gauges, "cobot_posture_score") == rep.score
    assert _value(gauges, "cobot_posture_level") == int(rep.level)
    assert _value(gauges, "cobot_control_level", control="cert_lifetime", priority="critical") == 0
    assert _value(gauges, "cobot_control_level", control="key_protection", priority="high") == 1
    assert _value(gauges, "cobot_control_level", control="reporters_alive", priority="medium") == 3
    assert _value(gauges, "cobot_cert_days_left", enclave="/cell/arm") == 12  # lowest of two reporters
    assert _value(gauges, "cobot_cert_days_left", enclave="/cell/gripper") == 90
    assert _value(gauges, "cobot_stale_reporters") == 1
    assert _value(gauges, "cobot_open_incidents") == 2


def test_vanished_labels_are_removed_and_missing_report_fails_closed() -> None:
    gauges = create_metrics()
    update_metrics(gauges, report(), findings(), 0, 0)
    update_metrics(gauges, None, [cert("/cell/arm", 5)], 0, 0)
    assert _value(gauges, "cobot_posture_score") == 0
    assert _value(gauges, "cobot_posture_level") == Level.ERROR
    assert _value(gauges, "cobot_control_level", control="cert_lifetime", priority="critical") is None
    assert _value(gauges, "cobot_cert_days_left", enclave="/cell/gripper") is None
    assert _value(gauges, "cobot_cert_days_left", enclave="/cell/arm") == 5


def test_cert_days_left_skips_unparseable_and_uses_subject_without_enclave_key() -> None:
    items = [
        Finding(CERT_EXPIRY, "/cell/a", Level.ERROR, "bad", (("days_left", "soon"),)),
        Finding(CERT_EXPIRY, "/cell/b", Level.ERROR, "expired", (("days_left", "-3"),)),
        Finding("key_modes", "/cell/c", Level.OK, "", (("days_left", "1"),)),
    ]
    assert cert_days_left(items) == {"/cell/b": -3}
