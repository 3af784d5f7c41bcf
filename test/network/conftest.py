"""Network-namespace fixtures: a cell, a supervisory and an enterprise host joined by a gateway
(``topology``); the three machines of a multi-host cell, one namespace each (``host_net``).

The namespaces are built by :class:`cobot_security.network.namespaces.CellNamespaces` from the
test's own network file (names carry the pid, addresses are 10.200.x.y inside those namespaces
only) and removed even when a test fails.  Needs root, ``ip`` and ``nft``; they fail (never skip)
without them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from cobot_security.network.load import load_network
from cobot_security.network.model import NetworkPolicy
from cobot_security.network.namespaces import CellNamespaces, namespaces_unavailable

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

#: The machines of the multi-host test cell (test_hosts_across_namespaces.py): one zone each, joined
#: by veth links to a forwarding gateway with no ruleset (nothing is filtered between them).
HOSTS_NETWORK = """\
version: 1
name: netns_hosts_cell
dds: {domain_ids: [0]}  # rendered nowhere: the test runs its own leased domain
gateway:
  interfaces: {ca: gwca, cell_pc: gwcell, vision_pc: gwvision}
zones:
  ca:
    subnets: [10.201.1.0/24]
    hosts: {ca_pc: 10.201.1.10}
  cell_pc:
    subnets: [10.201.2.0/24]
    hosts: {cell_pc: 10.201.2.10}
  vision_pc:
    subnets: [10.201.3.0/24]
    hosts: {vision_pc: 10.201.3.10}
conduits:
  - {name: dds_cell_to_vision, from: cell_pc, to: vision_pc, service: dds, purpose: documentation only}
"""


@pytest.fixture(scope="session")
def network_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test's own network.yaml (10.200.x.0/24 inside the namespaces)."""
    path = tmp_path_factory.mktemp("network") / "network.yaml"
    path.write_text(TEST_NETWORK, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def topology(network_file: Path) -> Iterator[CellNamespaces]:
    """cell, supervisory, enterprise and gateway namespaces (the package's CellNamespaces); removed after."""
    reason = namespaces_unavailable()
    if reason:
        # CI runs as root with iproute2 and nftables installed by the set-up: never skip silently.
        pytest.fail(f"{reason}: run the tests as root, as scripts/test.sh and CI do")
    with CellNamespaces(load_network(network_file), f"cb{os.getpid() % 100000}") as namespaces:
        yield namespaces


@pytest.fixture(scope="module")
def hosts_network(tmp_path_factory: pytest.TempPathFactory) -> NetworkPolicy:
    """The multi-host test cell's network (HOSTS_NETWORK), loaded; fails (never skips) without root."""
    reason = namespaces_unavailable()
    if reason:
        pytest.fail(f"{reason}: run the tests as root, as scripts/test.sh and CI do")
    path = tmp_path_factory.mktemp("hosts_network") / "network.yaml"
    path.write_text(HOSTS_NETWORK, encoding="utf-8")
    return load_network(path)


@pytest.fixture(scope="module")
def host_net(hosts_network: NetworkPolicy) -> Iterator[CellNamespaces]:
    """ca, cell_pc and vision_pc namespaces joined through a gateway namespace; removed after."""
    with CellNamespaces(hosts_network, f"cbh{os.getpid() % 100000}") as namespaces:
        yield namespaces
