"""Open ports compared with the exposure the conduits allow: a model-built network, no sockets."""

from __future__ import annotations

import ipaddress
import json
import sys
from pathlib import Path

import pytest

from cobot_security import checks
from cobot_security.cli.main import main
from cobot_security.network.model import Conduit, DiscoveryRange, Host, NetworkPolicy, Protocol, Zone
from cobot_security.scan.catalog import load_service_catalog_text
from cobot_security.scan.exposure import compare_with_conduits, conduits_to, locate_host
from cobot_security.scan.scanner import PortResult
from cobot_security.status import Level

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scan"))  # listeners.py (loopback helpers)

CATALOG = load_service_catalog_text("""version: 1
services:
  - vendor: Universal Robots
    service: ur_dashboard_server
    port: 29999
    protocol: tcp
    authentication: none
    banner: "^Connected: Universal Robots Dashboard Server"
    references: [CVE-2018-10635]
  - vendor: generic
    service: modbus_tcp
    port: 502
    protocol: tcp
    authentication: none
    references: [Modbus]
  - vendor: generic
    service: ssh
    port: 22
    protocol: tcp
    authentication: password
    references: [RFC 4253]
  - vendor: generic
    service: opcua
    port: 4840
    protocol: tcp
    authentication: certificate
    references: [IEC 62541]
""", "test-catalog")


def _zone(name: str, subnet: str, **hosts: str) -> Zone:
    return Zone(name, (ipaddress.IPv4Network(subnet),), f"eth_{name}", None,
                tuple(Host(h, ipaddress.IPv4Address(a)) for h, a in hosts.items()))


def _conduit(name: str, src: str, dst: str, ports: tuple[int, ...], to_hosts: tuple[str, ...] = (),
             protocol: Protocol = Protocol.TCP, service: str | None = None) -> Conduit:
    return Conduit(name, src, dst, protocol, ports, service, "test", (), to_hosts)


NETWORK = NetworkPolicy(
    1, "test_cell", (42,), 2, DiscoveryRange.SUBNET,
    (_zone("cell", "10.10.1.0/24", arm_controller="10.10.1.10", cell_pc="10.10.1.20"),
     _zone("supervisory", "10.10.2.0/24", mes_bridge="10.10.2.10"),
     _zone("enterprise", "10.10.3.0/24")),
    (_conduit("dashboard_sup_to_arm", "supervisory", "cell", (29999,), ("arm_controller",)),
     _conduit("dashboard_ent_to_arm", "enterprise", "cell", (29999,), ("arm_controller",)),
     _conduit("opcua_sup_to_cell", "supervisory", "cell", (4840,)),
     _conduit("ssh_sup_to_cell_pc", "supervisory", "cell", (22,), ("cell_pc",)),
     _conduit("dds_sup_to_cell", "supervisory", "cell", (), service="dds", protocol=Protocol.UDP)),
    "test-network.yaml",
)


def _by_subject(findings):
    assert all(f.check == checks.SERVICE_EXPOSURE for f in findings)
    subjects = [f.subject for f in findings]
    assert len(subjects) == len(set(subjects))
    return {f.subject: f for f in findings}


def test_locate_by_address_name_and_subnet() -> None:
    assert locate_host(NETWORK, "10.10.1.10").host.name == "arm_controller"
    assert locate_host(NETWORK, "cell_pc").zone.name == "cell"
    place = locate_host(NETWORK, "10.10.3.77")
    assert (place.zone.name, place.host) == ("enterprise", None)
    assert locate_host(NETWORK, "192.0.2.1") is None
    assert locate_host(NETWORK, "no-such-name") is None


def test_conduits_to_respects_to_hosts_and_protocol() -> None:
    arm = locate_host(NETWORK, "10.10.1.10")
    pc = locate_host(NETWORK, "10.10.1.20")
    assert [c.name for c in conduits_to(NETWORK, arm, 29999)] == ["dashboard_sup_to_arm", "dashboard_ent_to_arm"]
    assert conduits_to(NETWORK, pc, 29999) == ()
    assert [c.name for c in conduits_to(NETWORK, pc, 4840)] == ["opcua_sup_to_cell"]
    assert conduits_to(NETWORK, pc, 17910) == ()  # DDS is UDP: never matched against the TCP scan


def test_unauthenticated_service_through_conduit_is_error_naming_conduits_and_zones() -> None:
    found = _by_subject(compare_with_conduits(
        NETWORK, "10.10.1.10",
        [PortResult("10.10.1.10", 29999, True, "Connected: Universal Robots Dashboard Server")], CATALOG))

    dash = found["10.10.1.10:29999"]
    assert dash.level == Level.ERROR
    assert "dashboard_sup_to_arm, dashboard_ent_to_arm" in dash.message
    assert "supervisory, enterprise" in dash.message
    assert "without authentication" in dash.message
    assert dash.value("conduits") == "dashboard_sup_to_arm, dashboard_ent_to_arm"
    assert dash.value("from_zones") == "supervisory, enterprise"
    assert dash.value("evidence") == "identified by banner"
    assert dash.value("zone") == "cell"
    assert dash.value("host_name") == "arm_controller"


def test_open_port_without_conduit_is_warn_blocked_by_default_deny() -> None:
    # Modbus is unauthenticated, but no conduit lets anything outside the cell reach it.
    found = _by_subject(compare_with_conduits(NETWORK, "10.10.1.10", [PortResult("10.10.1.10", 502, True)],
                                              CATALOG))

    modbus = found["10.10.1.10:502"]
    assert modbus.level == Level.WARN
    assert "open on the host, blocked at the gateway by default deny (no conduit): close it or keep it " \
           "in-zone" in modbus.message
    assert "SR 7.7" in modbus.message
    assert modbus.value("conduits") == ""
    assert modbus.value("service") == "modbus_tcp"


def test_uncatalogued_port_without_conduit_is_warn() -> None:
    found = _by_subject(compare_with_conduits(NETWORK, "10.10.1.20", [PortResult("10.10.1.20", 8080, True)],
                                              CATALOG))

    assert found["10.10.1.20:8080"].level == Level.WARN
    assert "not in the catalog" in found["10.10.1.20:8080"].message
    assert "default deny" in found["10.10.1.20:8080"].message


def test_conduit_port_with_nothing_listening_is_an_ok_note() -> None:
    # The arm controller: both dashboard conduits and the zone-wide OPC UA conduit reach it, nothing listens.
    results = [PortResult("10.10.1.10", p, False) for p in (29999, 4840, 502)]
    found = _by_subject(compare_with_conduits(NETWORK, "10.10.1.10", results, CATALOG))

    assert found["10.10.1.10"].level == Level.OK
    assert "no catalogued service reachable" in found["10.10.1.10"].message
    assert found["10.10.1.10:29999"].level == Level.OK
    assert "nothing listens" in found["10.10.1.10:29999"].message
    assert "dashboard_sup_to_arm, dashboard_ent_to_arm" in found["10.10.1.10:29999"].message
    assert found["10.10.1.10:4840"].value("conduits") == "opcua_sup_to_cell"
    assert "10.10.1.10:502" not in found  # no conduit, nothing open: nothing to say
    assert "10.10.1.10:22" not in found  # the ssh conduit goes to cell_pc only


def test_unscanned_conduit_ports_get_no_note() -> None:
    found = _by_subject(compare_with_conduits(NETWORK, "10.10.1.20", [PortResult("10.10.1.20", 502, False)],
                                              CATALOG, scanned_ports=[502, 22]))

    assert set(found) == {"10.10.1.20", "10.10.1.20:22"}  # 4840 allowed but not scanned


def test_only_open_ports_given_takes_every_conduit_port_as_scanned() -> None:
    class Open:
        def __init__(self, port: int) -> None:
            self.port = port

    found = _by_subject(compare_with_conduits(NETWORK, "10.10.1.20", [Open(4840)], CATALOG))

    assert found["10.10.1.20:4840"].level == Level.OK  # certificate auth through its conduit
    assert "exposure the conduits allow" in found["10.10.1.20:4840"].message
    assert found["10.10.1.20:22"].level == Level.OK
    assert "nothing listens" in found["10.10.1.20:22"].message


def test_password_service_through_conduit_is_warn() -> None:
    found = _by_subject(compare_with_conduits(NETWORK, "cell_pc", [PortResult("cell_pc", 22, True)], CATALOG))

    ssh = found["cell_pc:22"]
    assert ssh.level == Level.WARN
    assert "ssh_sup_to_cell_pc" in ssh.message and "password" in ssh.message


def test_host_only_in_a_subnet_gets_zone_wide_conduits_only() -> None:
    results = [PortResult("10.10.1.99", 29999, True), PortResult("10.10.1.99", 4840, False)]
    found = _by_subject(compare_with_conduits(NETWORK, "10.10.1.99", results, CATALOG))

    assert found["10.10.1.99:29999"].level == Level.WARN  # dashboard conduits name arm_controller only
    assert found["10.10.1.99:29999"].value("host_name") is None
    assert found["10.10.1.99:4840"].level == Level.OK


def test_host_not_in_the_network_keeps_the_plain_judgement() -> None:
    results = [PortResult("127.0.0.1", 29999, True), PortResult("127.0.0.1", 22, True),
               PortResult("127.0.0.1", 502, False)]
    found = _by_subject(compare_with_conduits(NETWORK, "127.0.0.1", results, CATALOG))

    assert {s: f.level for s, f in found.items()} == {"127.0.0.1:29999": Level.ERROR, "127.0.0.1:22": Level.WARN}
    for finding in found.values():
        assert "not in the network file test-network.yaml" in finding.message
        assert finding.value("network") == "host not in any zone"
    closed = compare_with_conduits(NETWORK, "127.0.0.1", [PortResult("127.0.0.1", 502, False)], CATALOG)
    assert [(f.subject, f.level) for f in closed] == [("127.0.0.1", Level.OK)]
    assert "not in the network file" in closed[0].message


@pytest.mark.timeout(60)
def test_cli_compares_loopback_listeners_with_a_network_file(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """The one socket test here: loopback listeners of test/scan, 127.0.0.1 a host of the file's cell zone."""
    from listeners import UR_BANNER, closed_port, listener

    with listener(UR_BANNER) as dashboard, listener() as modbus:
        spare = closed_port()
        catalog = tmp_path / "catalog.yaml"
        catalog.write_text(f"""version: 1
services:
  - vendor: Universal Robots
    service: ur_dashboard_server
    port: {dashboard}
    protocol: tcp
    authentication: none
    banner: "^Connected: Universal Robots Dashboard Server"
    references: [CVE-2018-10635]
  - vendor: generic
    service: modbus_tcp
    port: {modbus}
    protocol: tcp
    authentication: none
    references: [Modbus]
""")
        network = tmp_path / "network.yaml"
        network.write_text(f"""version: 1
name: loopback_cell
dds: {{domain_ids: [7]}}
gateway:
  interfaces: {{cell: lo_cell, supervisory: lo_sup}}
zones:
  cell:
    subnets: [127.0.0.0/24]
    hosts: {{arm_controller: 127.0.0.1}}
  supervisory:
    subnets: [127.0.1.0/24]
    hosts: {{mes_bridge: 127.0.1.10}}
conduits:
  - name: dashboard_sup_to_arm
    from: supervisory
    to: cell
    to_hosts: [arm_controller]
    ports: [{dashboard}, {spare}]
    protocol: tcp
    purpose: test
""")
        code = main(["scan", "services", "127.0.0.1", "--catalog", str(catalog), "--network", str(network),
                     "--no-ports-from-catalog", "--ports", f"{dashboard},{modbus},{spare}",
                     "--keystore", str(tmp_path / "absent"), "--timeout", "0.5", "--format", "json"])
    out = {f["subject"]: f for f in json.loads(capsys.readouterr().out)}

    assert code == 1
    assert {s: f["level"] for s, f in out.items()} == {
        f"127.0.0.1:{dashboard}": "ERROR", f"127.0.0.1:{modbus}": "WARN", f"127.0.0.1:{spare}": "OK"}
    assert "dashboard_sup_to_arm" in out[f"127.0.0.1:{dashboard}"]["message"]
    assert "supervisory" in out[f"127.0.0.1:{dashboard}"]["message"]
    assert "default deny" in out[f"127.0.0.1:{modbus}"]["message"]
    assert "nothing listens" in out[f"127.0.0.1:{spare}"]["message"]
