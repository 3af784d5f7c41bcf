"""Service exposure scan against loopback listeners: a fake UR dashboard, a silent port, closed ports."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from listeners import UR_BANNER, closed_port, listener

from cobot_security import checks
from cobot_security.cli.main import main
from cobot_security.keystore.layout import KeystoreLayout
from cobot_security.scan.catalog import load_service_catalog_text
from cobot_security.scan.results import read_scan_results
from cobot_security.scan.scanner import ScanLimits, scan_ports
from cobot_security.scan.services import scan_services
from cobot_security.status import Level

pytestmark = pytest.mark.timeout(60)

FAST = ScanLimits(concurrency=8, rate=100.0, timeout_s=0.5)


def catalog_text(dashboard_port: int, modbus_port: int) -> str:
    """The shipped UR dashboard and Modbus entries, moved to the test's free ports."""
    return f"""
version: 1
services:
  - vendor: Universal Robots
    service: ur_dashboard_server
    port: {dashboard_port}
    protocol: tcp
    authentication: none
    banner: "^Connected: Universal Robots Dashboard Server"
    references: ["CVE-2018-10635"]
  - vendor: generic
    service: modbus_tcp
    port: {modbus_port}
    protocol: tcp
    authentication: none
    references: ["Modbus"]
  - vendor: generic
    service: ssh
    port: 22
    protocol: tcp
    authentication: password
    banner: "^SSH-"
    references: ["RFC 4253"]
"""


def test_dashboard_identified_and_silent_port_presumed() -> None:
    with listener(UR_BANNER) as dashboard, listener() as silent, listener(b"hello\n") as unknown:
        catalog = load_service_catalog_text(catalog_text(dashboard, silent), "test-catalog")
        found = scan_services(["127.0.0.1"], [dashboard, silent, unknown], catalog, FAST)

    by_subject = {f.subject: f for f in found}
    dash = by_subject[f"127.0.0.1:{dashboard}"]
    assert (dash.check, dash.level) == (checks.SERVICE_EXPOSURE, Level.ERROR)
    assert dash.value("service") == "ur_dashboard_server"
    assert dash.value("evidence") == "identified by banner"
    assert dash.value("banner") == UR_BANNER.decode().strip()
    modbus = by_subject[f"127.0.0.1:{silent}"]
    assert modbus.level == Level.ERROR
    assert modbus.value("evidence") == "presumed from the port"
    other = by_subject[f"127.0.0.1:{unknown}"]
    assert other.level == Level.WARN
    assert "not in the catalog" in other.message


def test_nothing_exposed_is_one_ok_summary() -> None:
    port = closed_port("127.0.0.2")
    catalog = load_service_catalog_text(catalog_text(port, port + 1 if port < 65535 else port - 1), "c")

    found = scan_services(["127.0.0.2"], [port], catalog, FAST)

    assert [(f.check, f.subject, f.level) for f in found] == [(checks.SERVICE_EXPOSURE, "127.0.0.2", Level.OK)]


def test_rate_and_concurrency_bound_the_scan() -> None:
    import asyncio

    ports = [closed_port() for _ in range(6)]
    started = time.monotonic()
    asyncio.run(scan_ports(["127.0.0.1"], ports, ScanLimits(concurrency=2, rate=10.0, timeout_s=0.5)))
    paced = time.monotonic() - started
    with listener() as a, listener() as b, listener() as c, listener() as d:
        started = time.monotonic()
        results = asyncio.run(scan_ports(["127.0.0.1"], [a, b, c, d], ScanLimits(concurrency=2, rate=200.0,
                                                                                    timeout_s=0.4)))
        bounded = time.monotonic() - started

    assert paced >= 0.45  # 6 starts at 10/s: at least 5 intervals of 0.1 s
    assert all(r.open for r in results)
    assert bounded >= 0.75  # 4 silent banner reads of 0.4 s, two at a time


def test_cli_scans_stores_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keystore = tmp_path / "keystore"
    keystore.mkdir()
    with listener(UR_BANNER) as dashboard:
        catalog = tmp_path / "catalog.yaml"
        catalog.write_text(catalog_text(dashboard, closed_port()))
        code = main(["scan", "services", "127.0.0.1", "--catalog", str(catalog), "--keystore", str(keystore),
                     "--timeout", "0.5", "--format", "json"])
    out = json.loads(capsys.readouterr().out)

    assert code == 1
    assert [(f["subject"], f["level"]) for f in out] == [(f"127.0.0.1:{dashboard}", "ERROR")]
    [(path, record)] = read_scan_results(KeystoreLayout(keystore).scans_dir)
    assert path.name == "services-127.0.0.1.json"
    assert record.target == "127.0.0.1"
    assert [f.level for f in record.findings] == [Level.ERROR]


def test_cli_clean_host_exits_0_without_storing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    catalog = tmp_path / "catalog.yaml"
    port = closed_port()
    catalog.write_text(catalog_text(port, closed_port()))

    code = main(["scan", "services", "127.0.0.1", "--catalog", str(catalog), "--no-ports-from-catalog",
                 "--ports", str(port), "--keystore", str(tmp_path / "absent"), "--timeout", "0.5"])

    assert code == 0
    assert "OK" in capsys.readouterr().out
    assert not (tmp_path / "absent").exists()


def test_adhoc_target_needs_the_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # 192.0.2.0/24 is TEST-NET-1: refused before any packet is sent.
    code = main(["scan", "services", "192.0.2.10", "--keystore", str(tmp_path)])
    err = capsys.readouterr().err

    assert code == 2
    assert "--allow-adhoc" in err
    assert "192.0.2.10" in err
    assert not (tmp_path / ".cobot_security").exists()


def test_adhoc_opcua_target_needs_the_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["scan", "opcua", "opc.tcp://192.0.2.10:4840", "--keystore", str(tmp_path)])

    assert code == 2
    assert "--allow-adhoc" in capsys.readouterr().err


@pytest.mark.parametrize("flag, value", [("--concurrency", "65"), ("--rate", "201"), ("--timeout", "31"),
                                         ("--concurrency", "0")])
def test_caps_are_hard(flag: str, value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["scan", "services", "127.0.0.1", flag, value, "--keystore", str(tmp_path)])

    assert code == 2
    assert flag in capsys.readouterr().err
