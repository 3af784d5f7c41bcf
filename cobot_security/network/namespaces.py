"""Network namespaces standing in for a cell's zones and its gateway, to prove a ruleset for real.

One namespace per zone (its hosts' addresses on ``eth0``, default route via the gateway) and one
for the gateway (one veth per zone, named as the network policy names the gateway's interface,
forwarding on).  Both veth ends are created directly inside their namespaces, so no name ever
appears in the host's; everything is removed on exit, also after an error or Ctrl-C.  Needs Linux,
root, iproute2 and nftables (:func:`namespaces_unavailable` says why not).  Used by the demo and
the network tests.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from types import TracebackType

from cobot_security.errors import CobotSecurityError
from cobot_security.network.model import NetworkPolicy, Zone

__all__ = ["CellNamespaces", "ZoneLink", "namespaces_unavailable", "plan_links"]

STEP_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class ZoneLink:
    """One zone's namespace and its veth pair to the gateway (gateway side first)."""

    zone: str
    namespace: str
    gateway_interface: str
    gateway_address: str
    prefix_len: int
    addresses: tuple[str, ...]


def _zone_addresses(zone: Zone) -> tuple[str, str, int]:
    """(gateway address, a stand-in host address, prefix length) inside the zone's first subnet."""
    subnet = zone.subnets[0]
    taken = {str(h.address) for h in zone.hosts}
    usable = [str(a) for a in (subnet.network_address + 1, subnet.broadcast_address - 1) if str(a) not in taken]
    if not usable:
        raise CobotSecurityError(f"zone {zone.name}: no free address for the gateway in {subnet}")
    stand_in = str(subnet.network_address + 100) if subnet.num_addresses > 102 else usable[-1]
    return usable[0], stand_in, subnet.prefixlen


def plan_links(network: NetworkPolicy, tag: str) -> tuple[str, tuple[ZoneLink, ...]]:
    """(gateway namespace, one link per zone) named with ``tag`` (pure: nothing is created)."""
    links = []
    for zone in network.zones:
        gateway_address, stand_in, prefix_len = _zone_addresses(zone)
        addresses = tuple(str(h.address) for h in zone.hosts) or (stand_in,)
        links.append(ZoneLink(zone.name, f"{tag}{zone.name[:6]}", zone.gateway_interface, gateway_address,
                              prefix_len, addresses))
    return f"{tag}gw", tuple(links)


def namespaces_unavailable() -> str | None:
    """Why network namespaces cannot be built here (not root, tools missing), or None."""
    if sys.platform != "linux" or os.geteuid() != 0:
        return "network namespaces need root on Linux (ip netns, nft)"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            return f"{tool} not found (Debian: apt-get install {'iproute2' if tool == 'ip' else 'nftables'})"
    return None


def _run(*command: str, stdin: str | None = None) -> None:
    try:
        subprocess.run(command, input=stdin, check=True, capture_output=True, text=True, timeout=STEP_TIMEOUT_S)
    except subprocess.CalledProcessError as exc:
        raise CobotSecurityError(f"{' '.join(command)} failed: {exc.stderr.strip()[:200]}") from exc
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CobotSecurityError(f"cannot run {' '.join(command)}: {exc}") from exc


def _settled(namespace: str, device: str) -> bool:
    """Whether ``device`` in ``namespace`` is operationally up and none of its addresses is tentative."""
    try:
        shown = subprocess.run(["ip", "-n", namespace, "-j", "addr", "show", "dev", device], check=True,
                               capture_output=True, text=True, timeout=STEP_TIMEOUT_S).stdout
        link = json.loads(shown)[0]
        return link.get("operstate") == "UP" and not any(a.get("tentative") for a in link.get("addr_info", ()))
    except (OSError, subprocess.SubprocessError, ValueError, IndexError, AttributeError):
        return False


class CellNamespaces:
    """The zones and the gateway of ``network`` as namespaces (a context manager)."""

    def __init__(self, network: NetworkPolicy, tag: str) -> None:
        self.network = network
        self.gateway, self.links = plan_links(network, tag)
        self.zones = {link.zone: link.namespace for link in self.links}
        self._created: list[str] = []

    def __enter__(self) -> CellNamespaces:
        try:
            self._build()
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.remove()

    def _build(self) -> None:
        for namespace in (self.gateway, *self.zones.values()):
            _run("ip", "netns", "add", namespace)
            self._created.append(namespace)
            _run("ip", "-n", namespace, "link", "set", "lo", "up")
            # No duplicate-address detection: the zone's links are settled as soon as they exist.
            _run("ip", "netns", "exec", namespace, "sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0")
        for link in self.links:
            _run("ip", "link", "add", "name", link.gateway_interface, "netns", self.gateway, "type", "veth",
                 "peer", "name", "eth0", "netns", link.namespace)
            _run("ip", "-n", self.gateway, "addr", "add", f"{link.gateway_address}/{link.prefix_len}",
                 "dev", link.gateway_interface)
            _run("ip", "-n", self.gateway, "link", "set", link.gateway_interface, "up")
            for address in link.addresses:
                _run("ip", "-n", link.namespace, "addr", "add", f"{address}/{link.prefix_len}", "dev", "eth0")
            _run("ip", "-n", link.namespace, "link", "set", "eth0", "up")
            _run("ip", "-n", link.namespace, "route", "add", "default", "via", link.gateway_address)
        _run("ip", "netns", "exec", self.gateway, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        self._wait_until_running()

    def _wait_until_running(self) -> None:
        """Return once every veth end is up with all its addresses final (none "tentative").

        An address that turns final while a program starts is a network change to it: Fast DDS,
        for one, then announced only its loopback locators and was never reached from another
        namespace (a test flake, one run in two).  Duplicate-address detection is off in our
        namespaces, so this returns at once unless the kernel differs.
        """
        pending = {(self.gateway, link.gateway_interface) for link in self.links}
        pending |= {(link.namespace, "eth0") for link in self.links}
        deadline = time.monotonic() + STEP_TIMEOUT_S
        while pending:
            pending = {(ns, dev) for ns, dev in pending if not _settled(ns, dev)}
            if pending and time.monotonic() > deadline:
                waiting = ", ".join(f"{dev} in {ns}" for ns, dev in sorted(pending))
                raise CobotSecurityError(f"links not up after {STEP_TIMEOUT_S:g} s: {waiting}")
            if pending:
                time.sleep(0.05)

    def exec_prefix(self, zone: str) -> list[str]:
        """Command prefix that runs a program inside ``zone``'s namespace."""
        return ["ip", "netns", "exec", self.zones[zone]]

    def popen(self, zone: str, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        """Start ``args`` inside ``zone``'s namespace with pipes on stdin/stdout/stderr."""
        return subprocess.Popen(self.exec_prefix(zone) + args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env)

    def load_ruleset(self, ruleset: str) -> None:
        """Load an nftables ruleset (``nft -f -``) into the gateway's namespace."""
        _run("ip", "netns", "exec", self.gateway, "nft", "-f", "-", stdin=ruleset)

    def address_of(self, zone: str) -> ipaddress.IPv4Address:
        """The first address of ``zone``'s namespace."""
        return ipaddress.IPv4Address(next(link for link in self.links if link.zone == zone).addresses[0])

    def remove(self) -> None:
        """Delete every namespace this object created (idempotent; veths go with them)."""
        while self._created:
            subprocess.run(["ip", "netns", "del", self._created.pop()], capture_output=True, timeout=STEP_TIMEOUT_S,
                           check=False)
