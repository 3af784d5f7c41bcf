"""The network file loader: the shipped example loads, and mistakes name file:line:field."""

from pathlib import Path

import pytest

from cobot_security.network.load import NetworkError, load_network, parse_network
from cobot_security.network.model import DiscoveryRange, Protocol

REPO = Path(__file__).resolve().parents[3]

BASE = """\
version: 1
name: t
dds: {domain_ids: [3]}
gateway:
  interfaces: {a: ea, b: eb}
zones:
  a:
    subnets: [192.0.2.0/25]
    hosts: {h1: 192.0.2.10}
  b:
    subnets: [192.0.2.128/25]
    hosts: {h2: 192.0.2.130}
conduits:
  - name: c1
    from: a
    to: b
    service: dds
    purpose: test
"""


def test_shipped_example_loads():
    network = load_network(REPO / "policies" / "network.yaml")
    assert [z.name for z in network.zones] == ["cell", "supervisory", "enterprise"]
    assert network.domain_ids == (42,)
    assert network.discovery_range is DiscoveryRange.SUBNET
    assert not any(c.from_zone == "enterprise" and c.to_zone == "cell" for c in network.conduits)
    opcua = next(c for c in network.conduits if c.service == "opcua")
    assert opcua.protocol is Protocol.TCP and network.conduit_ports(opcua) == (4840,)


def test_dds_ports_come_from_the_domain():
    network = parse_network(BASE, "n.yaml")
    assert network.conduit_ports(network.conduits[0])[0] == 7400 + 250 * 3 + 10
    assert network.conduits[0].protocol is Protocol.UDP


def test_domain_ids_default_from_the_workcell_policy():
    text = BASE.replace("dds: {domain_ids: [3]}\n", "")
    assert parse_network(text, "n.yaml", (42,)).domain_ids == (42,)
    with pytest.raises(NetworkError, match=r"n.yaml: dds.domain_ids: expected domain ids here or from the workcell"):
        parse_network(text, "n.yaml")


@pytest.mark.parametrize("old,new,message", [
    ("version: 1", "version: 2", r"n.yaml:1: version: expected version 1, got 2"),
    ("name: t\n", "name: t\nextra: 1\n", r"n.yaml:3: extra: expected one of the keys"),
    ("[192.0.2.0/25]", "[192.0.2.1/25]", r"n.yaml:8: zones.a.subnets\[0\]: expected an IPv4 CIDR subnet"),
    ("h1: 192.0.2.10", "h1: 192.0.2.200", r"n.yaml:9: zones.a.hosts.h1: expected an address inside the zone"),
    ("192.0.2.128/25", "192.0.2.0/24", r"zones.b.subnets: expected subnets apart from zone a's"),
    ("    to: b\n", "    to: z\n", r"n.yaml:16: conduits\[0\].to: expected one of the zones a, b, got 'z'"),
    ("    to: b\n", "    to: a\n", r"n.yaml:16: conduits\[0\].to: expected a zone other than 'from'"),
    ("service: dds", "service: telnet", r"n.yaml:17: conduits\[0\].service: expected one of dds, opcua"),
    ("service: dds", "service: dds\n    protocol: tcp", r"conduits\[0\].protocol: expected udp"),
    ("service: dds", "ports: [70000]\n    protocol: tcp",
     r"n.yaml:17: conduits\[0\].ports\[0\]: expected a port 1..65535"),
    ("service: dds", "ports: [80]", r"conduits\[0\].protocol: expected a required key 'protocol'"),
    ("service: dds", "service: dds\n    ports: [80]",
     r"conduits\[0\]: expected exactly one of 'ports' or 'service', got both"),
    ("    purpose: test\n", "    purpose: test\n    to_hosts: [h1]\n",
     r"to_hosts\[0\]: expected a host of zone b \(h2\)"),
    ("{a: ea, b: eb}", "{a: ea}", r"gateway.interfaces.b: expected the gateway interface facing zone b"),
    ("{a: ea, b: eb}", "{a: ea, b: ea}", r"gateway.interfaces.b: expected an interface of its own"),
    ("{a: ea, b: eb}", '{a: ea, b: "e b"}', r"gateway.interfaces.b: expected a Linux interface name"),
    ("  b:\n", "  B:\n", r"zones: expected a zone name"),
    ("conduits:\n", "conduits:\n  - name: c1\n    from: a\n    to: b\n    service: https\n    purpose: p\n",
     r"conduits\[1\].name: expected a unique conduit name \(first at line 14\)"),
])
def test_mistakes_name_file_line_field(old, new, message):
    text = BASE.replace(old, new, 1)
    assert text != BASE
    with pytest.raises(NetworkError, match=message):
        parse_network(text, "n.yaml")


def test_participants_must_keep_ports_below_65536():
    text = BASE.replace("dds: {domain_ids: [3]}", "dds: {domain_ids: [232], participants: 100}")
    with pytest.raises(NetworkError, match=r"n.yaml:3: dds.participants: expected participant ports below 65536"):
        parse_network(text, "n.yaml")


def test_host_names_are_unique_across_zones():
    text = BASE.replace("h2: 192.0.2.130", "h1: 192.0.2.130")
    with pytest.raises(NetworkError, match=r"n.yaml:12: zones.b.hosts.h1: expected a host name used once"):
        parse_network(text, "n.yaml")


def test_duplicate_zone_key_is_refused():
    text = BASE.replace("  b:\n", "  a:\n", 1)
    with pytest.raises(NetworkError, match=r"n.yaml:10: zones.a: expected each zone once \(first defined at line 7\)"):
        parse_network(text, "n.yaml")
