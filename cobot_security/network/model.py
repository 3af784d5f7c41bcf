"""Zones and conduits of the cell (IEC 62443-3-2) as frozen dataclasses; default deny is implied.

The loader builds these from ``policies/network.yaml``; the renderer and the checker read them.
Nothing here knows YAML, nftables or DDS.  ``line`` fields remember where an item was written.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from enum import Enum

from cobot_security.network.rtps import compute_rtps_ports

__all__ = [
    "Conduit",
    "DiscoveryRange",
    "Host",
    "NetworkPolicy",
    "Protocol",
    "SERVICE_PORTS",
    "Zone",
]

#: Named services and their (protocol, ports); ``dds`` is special: its ports come from the domain id.
SERVICE_PORTS: dict[str, tuple[str, tuple[int, ...]]] = {
    "opcua": ("tcp", (4840,)),
    "https": ("tcp", (443,)),
    "ssh": ("tcp", (22,)),
    "modbus": ("tcp", (502,)),
}
DDS_SERVICE = "dds"


class Protocol(str, Enum):
    """Transport protocol of a conduit."""

    TCP = "tcp"
    UDP = "udp"


class DiscoveryRange(str, Enum):
    """``ROS_AUTOMATIC_DISCOVERY_RANGE`` values this package renders (OFF/SYSTEM_DEFAULT are not useful here)."""

    SUBNET = "SUBNET"
    LOCALHOST = "LOCALHOST"


@dataclass(frozen=True)
class Host:
    """A named machine of a zone (e.g. the arm controller) and its IPv4 address."""

    name: str
    address: ipaddress.IPv4Address
    line: int | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Zone:
    """A security zone: its subnets, the gateway interface facing it, optional VLAN id, its hosts."""

    name: str
    subnets: tuple[ipaddress.IPv4Network, ...]
    gateway_interface: str
    vlan_id: int | None
    hosts: tuple[Host, ...]
    line: int | None = field(default=None, compare=False)

    def host(self, name: str) -> Host | None:
        """The host called ``name`` in this zone, or None."""
        for host in self.hosts:
            if host.name == name:
                return host
        return None


@dataclass(frozen=True)
class Conduit:
    """One allowed, one-way flow: new connections/datagrams from ``from_zone`` to ``to_zone``.

    ``from_hosts``/``to_hosts`` narrow the flow to named hosts (empty: the zone's subnets).
    ``ports`` are the explicit ports; ``service`` names a well-known one (``dds`` is computed).
    """

    name: str
    from_zone: str
    to_zone: str
    protocol: Protocol
    ports: tuple[int, ...]
    service: str | None
    purpose: str
    from_hosts: tuple[str, ...] = ()
    to_hosts: tuple[str, ...] = ()
    line: int | None = field(default=None, compare=False)

    @property
    def is_dds(self) -> bool:
        """Whether this conduit carries DDS/RTPS (ports computed from the domain ids)."""
        return self.service == DDS_SERVICE


@dataclass(frozen=True)
class NetworkPolicy:
    """The whole segmentation of a cell: DDS domain facts, zones and the allowed conduits."""

    version: int
    name: str
    domain_ids: tuple[int, ...]
    participants: int
    discovery_range: DiscoveryRange
    zones: tuple[Zone, ...]
    conduits: tuple[Conduit, ...]
    source: str | None = field(default=None, compare=False)

    def zone(self, name: str) -> Zone | None:
        """The zone called ``name``, or None."""
        for zone in self.zones:
            if zone.name == name:
                return zone
        return None

    def hosts(self) -> tuple[tuple[Zone, Host], ...]:
        """Every (zone, host) in file order."""
        return tuple((zone, host) for zone in self.zones for host in zone.hosts)

    def conduit_ports(self, conduit: Conduit) -> tuple[int, ...]:
        """The destination ports a conduit opens, sorted; DDS: the unicast RTPS ports of every domain.

        Multicast is not forwarded by the gateway, so only unicast discovery and user ports cross it.
        """
        if conduit.is_dds:
            ports: set[int] = set()
            for domain_id in self.domain_ids:
                ports.update(compute_rtps_ports(domain_id, self.participants).unicast_ports)
            return tuple(sorted(ports))
        return tuple(sorted(set(conduit.ports)))

    def endpoint_addresses(self, conduit: Conduit, to_side: bool) -> tuple[str, ...]:
        """The addresses (``a.b.c.d`` or CIDR) of a conduit's source or destination side."""
        zone = self.zone(conduit.to_zone if to_side else conduit.from_zone)
        names = conduit.to_hosts if to_side else conduit.from_hosts
        if zone is None:
            return ()
        if names:
            return tuple(str(h.address) for n in names if (h := zone.host(n)) is not None)
        return tuple(str(subnet) for subnet in zone.subnets)
