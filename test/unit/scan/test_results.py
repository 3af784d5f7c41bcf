"""Stored scan results and the probe that publishes them with their age (no network, frozen time)."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
from pathlib import Path

import pytest

from cobot_security import checks
from cobot_security.errors import InputError
from cobot_security.health.evidence_probes import probe_stored_results
from cobot_security.keystore.layout import KeystoreLayout
from cobot_security.scan.results import (
    read_scan_record,
    read_scan_results,
    result_path,
    sanitise_target,
    store_scan_result,
)
from cobot_security.status import Finding, Level

NOW = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.timezone.utc)
OK = Finding(checks.OPCUA_ENDPOINTS, "opc.tcp://cell:4840", Level.OK, "fine", (("evidence", "Basic256Sha256"),))
BAD = Finding(checks.SERVICE_EXPOSURE, "arm:29999", Level.ERROR, "dashboard open", (("port", "29999"),))


def test_round_trip_atomic_and_sanitised(tmp_path: Path) -> None:
    directory = KeystoreLayout(tmp_path).scans_dir
    path = store_scan_result(directory, "opcua", "opc.tcp://cell:4840/ua", [OK], NOW)

    assert path == tmp_path / ".cobot_security" / "scans" / "opcua-opc.tcp_cell_4840_ua.json"
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    [(read_path, record)] = read_scan_results(directory)
    assert read_path == path
    assert (record.kind, record.target, record.scanned_at, record.findings) == (
        "opcua", "opc.tcp://cell:4840/ua", NOW, (OK,))
    assert [p.name for p in directory.iterdir()] == [path.name]  # no temporary file left behind


def test_sanitise_never_escapes_the_directory(tmp_path: Path) -> None:
    assert sanitise_target("../../etc/passwd") == "etc_passwd"
    assert sanitise_target("..") == "target"
    assert result_path(tmp_path, "services", "a/b").parent == tmp_path


def test_scan_kind_is_matched_whole(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="snake_case"):
        store_scan_result(tmp_path, "services\n", "arm", [OK], NOW)
    assert list(tmp_path.iterdir()) == []


def test_deeply_nested_record_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "services-x.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(InputError, match="services-x.json: expected a JSON result record, got JSONDecodeError"):
        read_scan_record(tmp_path / "services-x.json")


def test_corrupt_record_is_returned_not_raised(tmp_path: Path) -> None:
    (tmp_path / "services-x.json").write_text("{not json")
    (tmp_path / "services-y.json").write_text(json.dumps({"kind": "services", "scanned_at": "2026-11-29T12:00:00Z",
                                                          "findings": [{"check": "x", "subject": "s",
                                                                        "level": "PURPLE", "message": ""}]}))
    results = dict(read_scan_results(tmp_path))

    assert isinstance(results[tmp_path / "services-x.json"], InputError)
    with pytest.raises(InputError, match=r"services-y.json: findings\[0\].level: expected a level"):
        read_scan_record(tmp_path / "services-y.json")


def probe(tmp_path: Path, now: dt.datetime, network: Path | None = None) -> dict[str, Finding]:
    return {f.name: f for f in probe_stored_results(tmp_path, now, 7, network)}


def test_age_boundary_and_own_level(tmp_path: Path) -> None:
    store_scan_result(tmp_path, "opcua", "opc.tcp://cell:4840", [OK], NOW)
    store_scan_result(tmp_path, "services", "arm", [BAD], NOW)
    limit = NOW + dt.timedelta(days=7)

    before = probe(tmp_path, limit - dt.timedelta(seconds=1))
    at = probe(tmp_path, limit)
    after = probe(tmp_path, limit + dt.timedelta(seconds=1))

    assert before[OK.name].level == Level.OK
    assert at[OK.name].level == Level.OK
    assert after[OK.name].level == Level.WARN
    assert "older than 7 days" in after[OK.name].message
    assert after[BAD.name].level == Level.ERROR  # its own level is worse than the age warning
    assert before[OK.name].value("scanned_at") == "2026-11-29T12:00:00+00:00"
    assert before[OK.name].value("evidence") == "Basic256Sha256"
    assert set(before) == {OK.name, BAD.name}


def test_no_scans_is_an_error_per_check(tmp_path: Path) -> None:
    found = probe_stored_results(tmp_path / "missing", NOW, 7)

    assert [(f.check, f.subject, f.level) for f in found] == [
        (checks.OPCUA_ENDPOINTS, "scans", Level.ERROR), (checks.SERVICE_EXPOSURE, "scans", Level.ERROR)]
    assert "cobot-security scan opcua" in found[0].message


def test_unreadable_record_is_an_error_of_its_kind(tmp_path: Path) -> None:
    (tmp_path / "opcua-x.json").write_text("[]")
    store_scan_result(tmp_path, "services", "arm", [BAD], NOW)

    found = {(f.check, f.subject): f for f in probe_stored_results(tmp_path, NOW, 7)}

    assert found[(checks.OPCUA_ENDPOINTS, "opcua-x.json")].level == Level.ERROR
    assert "unreadable" in found[(checks.OPCUA_ENDPOINTS, "opcua-x.json")].message


def test_network_check_record_is_published(tmp_path: Path) -> None:
    network = tmp_path / "network_check.json"
    network.write_text(json.dumps({"checked_at": "2026-11-20T12:00:00+00:00", "findings": [
        {"check": "network_ruleset", "subject": "gateway", "level": 0, "message": "all conduits present",
         "values": {"missing": "0"}},
        {"check": "network_ruleset", "subject": "default_policy", "level": "ERROR", "message": "accept",
         "values": []},
    ]}))
    store_scan_result(tmp_path / "scans", "opcua", "u", [OK], NOW)
    store_scan_result(tmp_path / "scans", "services", "arm", [BAD], NOW)

    found = {f.subject: f for f in probe_stored_results(tmp_path / "scans", NOW, 7, network)
             if f.check == checks.NETWORK_RULESET}

    assert found["gateway"].level == Level.WARN  # 9 days old
    assert found["gateway"].value("missing") == "0"
    assert found["default_policy"].level == Level.ERROR
    network.write_text("{}")
    broken = [f for f in probe_stored_results(tmp_path / "scans", NOW, 7, network) if f.check == checks.NETWORK_RULESET]
    assert [(f.subject, f.level) for f in broken] == [("network_check.json", Level.ERROR)]
