"""reporter: every probe runs on the facts given; a probe that raises becomes an ERROR finding."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from cobot_security import checks
from cobot_security.health import certificate_probes, graph_probes
from cobot_security.health.graph_probes import GraphFacts, NodeFact
from cobot_security.health.reporter import ReporterConfig, collect_findings, collect_offline_findings
from cobot_security.keystore.evidence import record_verify_result
from cobot_security.keystore.layout import KeystoreLayout
from cobot_security.policy.model import WorkcellPolicy
from cobot_security.scan.results import store_scan_result
from cobot_security.status import Finding, Level, worst

KEYSTORE_CHECKS = {checks.CERT_EXPIRY, checks.CERT_CHAIN, checks.PERMISSIONS_VALIDITY, checks.GOVERNANCE,
                   checks.CRL, checks.KEY_MODES, checks.KEYSTORE_INTEGRITY, checks.SECURITY_ENV,
                   checks.DISCOVERY_EXPOSURE, checks.ENFORCEMENT_PROOF, checks.AUDIT_LOG, checks.HOST_ASSIGNMENT}
#: Published from stored scans (ERROR "no stored result" until a scan is stored).
SCAN_CHECKS = {checks.OPCUA_ENDPOINTS, checks.SERVICE_EXPOSURE}


def secure_env(layout: KeystoreLayout) -> dict[str, str]:
    return {"ROS_SECURITY_ENABLE": "true", "ROS_SECURITY_STRATEGY": "Enforce",
            "ROS_SECURITY_KEYSTORE": str(layout.root), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}


def test_offline_runs_every_probe_but_graph(layout: KeystoreLayout, policy: WorkcellPolicy,
                                            issued: dt.datetime) -> None:
    found = collect_offline_findings(layout.root, policy, issued, {}, os.getuid(), "host1")
    assert {f.check for f in found} == KEYSTORE_CHECKS | SCAN_CHECKS
    by_check = {f.check: f for f in found if f.subject in ("host1", "keystore")}
    assert by_check[checks.SECURITY_ENV].level == Level.ERROR  # no ROS_SECURITY_* given
    assert by_check[checks.KEYSTORE_INTEGRITY].level == Level.OK


def test_healthy_cell_with_graph(layout: KeystoreLayout, policy: WorkcellPolicy, issued: dt.datetime) -> None:
    record_verify_result(layout, passed=True, checks=4, failures=0, domain_id=0, now=issued)
    for kind, check, target in (("opcua", checks.OPCUA_ENDPOINTS, "opc.tcp://cell:4840"),
                                ("services", checks.SERVICE_EXPOSURE, "arm")):
        store_scan_result(KeystoreLayout(layout.root).scans_dir, kind, target,
                          [Finding(check, target, Level.OK, "scanned")], issued)
    config = ReporterConfig(keystore=layout.root, policy=policy, expected_uid=os.getuid(), host="host1")
    graph = GraphFacts(nodes=(NodeFact("gripper", "/cell", "/gripper"),),
                       publishers=(("/cell/status", "/cell/gripper"),))
    found = collect_findings(config, issued + dt.timedelta(days=1), secure_env(layout), graph)
    assert {f.check for f in found} == KEYSTORE_CHECKS | SCAN_CHECKS | {checks.GRAPH_CONFORMANCE}
    not_ok = [(f.name, f.message) for f in found if f.level != Level.OK]
    assert not_ok == []  # init now writes an empty CRL valid for crl_next_update (7 days)
    assert worst(f.level for f in found) == Level.OK


def test_thresholds_come_from_config(layout: KeystoreLayout, policy: WorkcellPolicy, issued: dt.datetime) -> None:
    config = ReporterConfig(keystore=layout.root, policy=policy, warn_days=100, error_days=95,
                            expected_uid=os.getuid(), host="h", proof_max_age_days=0)
    record_verify_result(layout, passed=True, checks=4, failures=0, domain_id=0, now=issued)
    found = collect_findings(config, issued + dt.timedelta(seconds=1), {}, None)
    assert {f.level for f in found if f.check == checks.CERT_EXPIRY} == {Level.ERROR}
    assert [f.level for f in found if f.check == checks.ENFORCEMENT_PROOF] == [Level.WARN]


def test_raising_probe_becomes_error(monkeypatch: pytest.MonkeyPatch, layout: KeystoreLayout,
                                     policy: WorkcellPolicy, issued: dt.datetime) -> None:
    def explode(*_args: object, **_kwargs: object) -> list[object]:
        raise RuntimeError("-----BEGIN PRIVATE KEY----- secret")

    monkeypatch.setattr(certificate_probes, "probe_crl", explode)
    monkeypatch.setattr(graph_probes, "probe_graph", explode)
    config = ReporterConfig(keystore=layout.root, policy=policy, expected_uid=os.getuid(), host="h")
    found = collect_findings(config, issued, {}, GraphFacts())
    failed = [f for f in found if f.subject == "probe"]
    assert [(f.check, f.level, f.message) for f in failed] == [
        (checks.CRL, Level.ERROR, "probe probe_crl raised RuntimeError"),
        (checks.GRAPH_CONFORMANCE, Level.ERROR, "probe probe_graph raised RuntimeError"),
    ]
    assert all("secret" not in f.message and "PRIVATE" not in f.message for f in found)
    assert any(f.check == checks.KEYSTORE_INTEGRITY for f in found)  # the other probes still ran


def test_missing_keystore_fails_closed(tmp_path: Path, policy: WorkcellPolicy, issued: dt.datetime) -> None:
    config = ReporterConfig(keystore=tmp_path / "none", policy=policy, expected_uid=os.getuid(), host="h")
    found = collect_findings(config, issued, {}, None)
    keystore_checks = KEYSTORE_CHECKS - {checks.SECURITY_ENV, checks.DISCOVERY_EXPOSURE, checks.CRL, checks.KEY_MODES}
    for check in keystore_checks:
        assert {f.level for f in found if f.check == check} == {Level.ERROR}, check
