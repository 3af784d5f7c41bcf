"""Network-namespace fixtures: a cell, a supervisory and an enterprise host joined by a gateway.

Every namespace and link is the test's own (names carry the pid), addresses are 10.200.x.y inside
those namespaces only, and everything is removed in ``finally`` even when a test fails.  Needs
root, ``ip`` and ``nft``; they fail (never skip) without them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

TEST_NETWORK = """\
version: 1
name: netns_test_cell
dds:
  domain_ids: [0]
  participants: 10
gateway:
  interfaces: {cell: gwcell, supervisory: gwsup, enterprise: gwent}
zones:
  cell:
    subnets: [10.200.1.0/24]
    hosts: {cell_pc: 10.200.1.20, arm_controller: 10.200.1.10}
  supervisory:
    subnets: [10.200.2.0/24]
    hosts: {mes_bridge: 10.200.2.10}
  enterprise:
    subnets: [10.200.3.0/24]
    hosts: {office_pc: 10.200.3.30}
conduits:
  - {name: opcua_sup_to_cell_pc, from: supervisory, to: cell, from_hosts: [mes_bridge], to_hosts: [cell_pc],
     service: opcua, purpose: MES reads the cell PC's OPC UA server}
  - {name: dds_cell_to_sup, from: cell, to: supervisory, from_hosts: [cell_pc], to_hosts: [mes_bridge],
     service: dds, purpose: cell PC to MES bridge}
  - {name: dds_sup_to_cell, from: supervisory, to: cell, from_hosts: [mes_bridge], to_hosts: [cell_pc],
     service: dds, purpose: MES bridge to cell PC}
  - {name: https_ent_to_mes, from: enterprise, to: supervisory, to_hosts: [mes_bridge], service: https,
     purpose: office reaches the MES web UI}
"""

#: zone → (gateway interface, gateway address, host addresses in order: the first is the primary).
_LINKS = {
    "cell": ("gwcell", "10.200.1.1", ("10.200.1.20", "10.200.1.10")),
    "supervisory": ("gwsup", "10.200.2.1", ("10.200.2.10",)),
    "enterprise": ("gwent", "10.200.3.1", ("10.200.3.30",)),
}
_STEP_TIMEOUT_S = 10


def _run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True, timeout=_STEP_TIMEOUT_S)


@dataclass(frozen=True)
class Topology:
    """The namespaces of one test run: zone name → namespace, plus the gateway's namespace."""

    zones: dict[str, str]
    gateway: str

    def exec_prefix(self, zone: str) -> list[str]:
        """Command prefix that runs a program inside ``zone``'s namespace."""
        return ["ip", "netns", "exec", self.zones[zone]]

    def popen(self, zone: str, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        """Start ``args`` inside ``zone``'s namespace with pipes on stdin/stdout."""
        return subprocess.Popen(self.exec_prefix(zone) + args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env)


def _unavailable_reason() -> str | None:
    if sys.platform != "linux" or os.geteuid() != 0:
        return "network namespace tests need root on Linux"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            return f"{tool} not found"
    probe = f"cbprobe{os.getpid()}"
    try:
        _run("ip", "netns", "add", probe)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
        return "cannot create network namespaces here"
    finally:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True, timeout=_STEP_TIMEOUT_S)
    return None


@pytest.fixture(scope="session")
def network_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test's own network.yaml (10.200.x.0/24 inside the namespaces)."""
    path = tmp_path_factory.mktemp("network") / "network.yaml"
    path.write_text(TEST_NETWORK, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def topology() -> Iterator[Topology]:
    """cell, sup, ent and gw namespaces, veth links to gw, forwarding on; removed in ``finally``."""
    reason = _unavailable_reason()
    if reason:
        # CI runs as root with iproute2 and nftables installed by the set-up: never skip silently.
        pytest.fail(f"{reason}: run the tests as root, as scripts/test.sh and CI do")
    tag = f"cb{os.getpid() % 100000}"
    names = {"cell": f"{tag}cell", "supervisory": f"{tag}sup", "enterprise": f"{tag}ent"}
    gateway = f"{tag}gw"
    created: list[str] = []
    try:
        for ns in [gateway, *names.values()]:
            _run("ip", "netns", "add", ns)
            created.append(ns)
            _run("ip", "-n", ns, "link", "set", "lo", "up")
        for zone, (gw_if, gw_addr, addresses) in _LINKS.items():
            ns = names[zone]
            # Both ends are created directly inside their namespaces: no name ever exists in the host's.
            _run("ip", "link", "add", "name", gw_if, "netns", gateway, "type", "veth",
                 "peer", "name", "eth0", "netns", ns)
            _run("ip", "-n", gateway, "addr", "add", f"{gw_addr}/24", "dev", gw_if)
            _run("ip", "-n", gateway, "link", "set", gw_if, "up")
            for address in addresses:
                _run("ip", "-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
            _run("ip", "-n", ns, "link", "set", "eth0", "up")
            _run("ip", "-n", ns, "route", "add", "default", "via", gw_addr)
        _run("ip", "netns", "exec", gateway, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        yield Topology(names, gateway)
    finally:
        for ns in reversed(created):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=_STEP_TIMEOUT_S)
