"""The controller service catalog, the target safety rails and the exposure judgement (no network)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cobot_security import checks
from cobot_security.errors import InputError
from cobot_security.scan.catalog import Authentication, load_service_catalog, load_service_catalog_text
from cobot_security.scan.judgement import judge_exposure
from cobot_security.scan.scanner import PortResult, ScanLimits
from cobot_security.scan.targets import check_targets, is_loopback, read_configured_hosts
from cobot_security.status import Level

REPO = Path(__file__).resolve().parents[3]
SHIPPED = REPO / "policies" / "controller_services.yaml"

ENTRY = """version: 1
services:
  - vendor: Universal Robots
    service: ur_dashboard_server
    port: 29999
    protocol: tcp
    authentication: none
    banner: "^Connected: Universal Robots Dashboard Server"
    references: [CVE-2018-10635]
"""


def test_shipped_catalog_has_the_ur_services() -> None:
    catalog = load_service_catalog(SHIPPED)
    by_port = {entry.port: entry for entry in catalog.services}

    assert set(catalog.tcp_ports) >= {22, 502, 5900, 29999, 30001, 30002, 30003, 30004}
    assert by_port[29999].banner is not None
    assert by_port[29999].banner.search("Connected: Universal Robots Dashboard Server")
    assert {by_port[p].authentication for p in (502, 29999, 30001, 30002, 30003, 30004)} == {Authentication.NONE}
    assert by_port[22].authentication == Authentication.PASSWORD
    assert all(entry.references for entry in catalog.services)


@pytest.mark.parametrize("old, new, message", [
    ("authentication: none", "authentication: maybe", r"t:7: services\[0\].authentication: expected one of none"),
    ("port: 29999", "port: 70000", r"t:5: services\[0\].port: expected a port 1-65535, got 70000"),
    ("protocol: tcp", "protocol: sctp", r"services\[0\].protocol: expected tcp or udp, got 'sctp'"),
    ("references: [CVE-2018-10635]", "references: []", r"services\[0\].references: expected at least one"),
    ('"^Connected', '"(^Connected', r"t:8: services\[0\].banner: expected a valid regular expression"),
    ("protocol: tcp", "protocol: tcp\n    owner: me", r"services\[0\].owner: expected one of the keys"),
    ("version: 1", "version: 2", r"t:1: version: expected version 1, got 2"),
])
def test_invalid_catalogs_name_file_line_field(old: str, new: str, message: str) -> None:
    with pytest.raises(InputError, match=message) as caught:
        load_service_catalog_text(ENTRY.replace(old, new), "t")
    assert caught.value.exit_code == 2


def test_duplicate_service_is_refused() -> None:
    doubled = ENTRY + "\n".join(ENTRY.splitlines()[2:]) + "\n"
    with pytest.raises(InputError, match=r"services\[1\]: expected each service/port once \(first defined at line 3\)"):
        load_service_catalog_text(doubled, "t")


def test_loopback_and_configured_hosts_only(tmp_path: Path) -> None:
    network = tmp_path / "network.yaml"
    network.write_text("version: 1\nzones:\n  cell:\n    subnets: [10.10.1.0/24]\n"
                       "    hosts:\n      arm_controller: 10.10.1.10\n  office:\n    subnets: [10.10.3.0/24]\n")
    listed = tmp_path / "hosts.yaml"
    listed.write_text("hosts: [plc1, {name: hmi, address: 10.0.0.7}]\n")
    configured = read_configured_hosts(network) | read_configured_hosts(listed)

    assert configured == {"arm_controller", "10.10.1.10", "plc1", "hmi", "10.0.0.7"}
    assert all(is_loopback(h) for h in ("localhost", "127.0.0.1", "127.3.2.1", "::1"))
    assert not any(is_loopback(h) for h in ("10.10.1.10", "localhost.example", "0.0.0.0"))
    check_targets(["127.0.0.1", "arm_controller", "10.10.1.10"], configured, allow_adhoc=False)
    check_targets(["192.0.2.1"], configured, allow_adhoc=True)
    with pytest.raises(InputError, match=r"HOST: expected a host named .*--allow-adhoc.*got '192.0.2.1'"):
        check_targets(["127.0.0.1", "192.0.2.1"], configured, allow_adhoc=False)


def test_hosts_file_must_be_a_mapping(tmp_path: Path) -> None:
    bad = tmp_path / "h.yaml"
    bad.write_text("- a\n")
    with pytest.raises(InputError, match="h.yaml:1: expected a mapping"):
        read_configured_hosts(bad)


@pytest.mark.parametrize("limits, field", [
    (ScanLimits(concurrency=0), "--concurrency"), (ScanLimits(concurrency=65), "--concurrency"),
    (ScanLimits(rate=0), "--rate"), (ScanLimits(rate=200.5), "--rate"),
    (ScanLimits(timeout_s=0), "--timeout"), (ScanLimits(timeout_s=30.5), "--timeout"),
])
def test_limits_have_hard_caps(limits: ScanLimits, field: str) -> None:
    with pytest.raises(InputError, match=field):
        limits.validate()
    assert ScanLimits(64, 200.0, 30.0).validate() == ScanLimits(64, 200.0, 30.0)


def test_judge_exposure() -> None:
    catalog = load_service_catalog(SHIPPED)
    results = [
        PortResult("cell", 29999, True, "Connected: Universal Robots Dashboard Server"),
        PortResult("cell", 22, True, "SSH-2.0-OpenSSH_9.6"),
        PortResult("cell", 30004, True, ""),
        PortResult("cell", 502, False, error="Connection refused"),
        PortResult("quiet", 502, False, error="timeout"),
        PortResult("quiet", 29999, False, error="Connection refused"),
    ]

    found = {f.subject: f for f in judge_exposure(results, catalog)}

    assert {s: f.level for s, f in found.items()} == {
        "cell:29999": Level.ERROR, "cell:22": Level.WARN, "cell:30004": Level.ERROR, "quiet": Level.OK}
    assert all(f.check == checks.SERVICE_EXPOSURE for f in found.values())
    assert found["cell:29999"].value("evidence") == "identified by banner"
    assert found["cell:30004"].value("evidence") == "presumed from the port"
    assert found["cell:22"].message == "generic ssh reachable (password authentication, identified by banner)"
    assert found["quiet"].value("ports_scanned") == "502 29999"
