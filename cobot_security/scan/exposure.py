"""Service scan results compared with the exposure the conduits allow (pure; no sockets, no files).

A port open on a host of the network file is judged by where it can be reached from: the TCP
conduits whose destination is that host (or its whole zone) and whose ports include it.

* reachable through a conduit from another zone: ERROR when the service takes no authentication
  (naming the conduits and source zones); OK when it authenticates with a certificate or key (the
  conduit documents the intended exposure); WARN for password, unknown authentication or a port
  the catalog does not know;
* open but no conduit allows it: WARN, the gateway drops it by default deny, so it only serves its
  own zone: close it or keep it in-zone (IEC 62443-3-3 SR 7.7 least functionality);
* a conduit port on the host where nothing listens (scanned and closed): an OK note;
* a host in no zone: the plain :func:`~cobot_security.scan.judgement.judge_exposure` judgement,
  saying the host is not in the network file.

The scan is TCP only, so UDP conduits (DDS) are not compared.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol as TypingProtocol

from cobot_security import checks
from cobot_security.network.model import Conduit, Host, NetworkPolicy, Protocol, Zone
from cobot_security.scan.catalog import Authentication, ServiceCatalog
from cobot_security.scan.judgement import OpenService, describe_open_port, judge_exposure
from cobot_security.scan.scanner import PortResult
from cobot_security.status import Finding, Level

__all__ = ["HostPlace", "OpenPortLike", "compare_with_conduits", "conduits_to", "locate_host"]

_TRUSTED_AUTH = frozenset({Authentication.CERTIFICATE, Authentication.KEY})


class OpenPortLike(TypingProtocol):
    """What the comparison reads of a port result: its number (``banner``/``open`` when present)."""

    @property
    def port(self) -> int: ...


@dataclass(frozen=True)
class HostPlace:
    """Where a scanned host sits in the network file: its zone and, when named there, the host."""

    zone: Zone
    host: Host | None

    @property
    def values(self) -> tuple[tuple[str, str], ...]:
        """Finding values naming the zone and, when named, the host."""
        return (("zone", self.zone.name),) + ((("host_name", self.host.name),) if self.host else ())

    @property
    def description(self) -> str:
        """"zone <zone>[, host <host>]", as messages say it."""
        return f"zone {self.zone.name}" + (f", host {self.host.name}" if self.host else "")


def locate_host(network: NetworkPolicy, host_address: str) -> HostPlace | None:
    """The zone (and named host) of ``host_address`` (an address or a host name of the file), or None.

    A named host matches by address or name; any other address matches the zone whose subnets hold it.
    """
    for zone, host in network.hosts():
        if host_address in (str(host.address), host.name):
            return HostPlace(zone, host)
    try:
        address = ipaddress.ip_address(host_address)
    except ValueError:
        return None
    for zone in network.zones:
        if any(address.version == subnet.version and address in subnet for subnet in zone.subnets):
            return HostPlace(zone, None)
    return None


def conduits_to(network: NetworkPolicy, place: HostPlace, port: int) -> tuple[Conduit, ...]:
    """The TCP conduits that let new connections reach ``port`` of the host at ``place``, in file order."""
    found = []
    for conduit in network.conduits:
        if conduit.protocol != Protocol.TCP or conduit.to_zone != place.zone.name:
            continue
        if conduit.to_hosts and (place.host is None or place.host.name not in conduit.to_hosts):
            continue
        if port in network.conduit_ports(conduit):
            found.append(conduit)
    return tuple(found)


def _as_result(host_address: str, item: OpenPortLike) -> PortResult:
    if isinstance(item, PortResult):
        return item
    return PortResult(host_address, int(item.port), bool(getattr(item, "open", True)),
                      str(getattr(item, "banner", "") or ""))


def _names(conduits: Iterable[Conduit]) -> tuple[str, str]:
    """('a, b', 'zone1, zone2'): conduit names and their source zones, each once, in order."""
    conduits = list(conduits)
    names = ", ".join(dict.fromkeys(c.name for c in conduits))
    zones = ", ".join(dict.fromkeys(c.from_zone for c in conduits))
    return names, zones


def _not_in_network(network: NetworkPolicy, host_address: str, results: Sequence[PortResult],
                    catalog: ServiceCatalog) -> list[Finding]:
    source = network.source or network.name
    note = f"not in the network file {source}: not compared with the conduits"
    if not results:
        return [Finding(checks.SERVICE_EXPOSURE, host_address, Level.OK, f"no port scanned; host {note}",
                        (("network", "host not in any zone"),))]
    return [Finding(f.check, f.subject, f.level, f"{f.message}; host {note}",
                    f.values + (("network", "host not in any zone"),))
            for f in judge_exposure(results, catalog)]


def _scanned(results: Sequence[PortResult], scanned_ports: Iterable[int] | None) -> set[int] | None:
    """The ports the scan tried, or None when only open ports are known (every conduit port counts)."""
    if scanned_ports is not None:
        return set(scanned_ports) | {r.port for r in results}
    if any(not r.open for r in results):
        return {r.port for r in results}
    return None


def _through_conduits(service: OpenService, conduits: Sequence[Conduit]) -> tuple[Level, str, list[tuple[str, str]]]:
    """Level, message and extra values for an open port that ``conduits`` expose to other zones."""
    names, zones = _names(conduits)
    through = f"through conduit {names} from zone {zones}"
    entry = service.entry
    if service.unauthenticated:
        message = f"{service.label} reachable without authentication {through} ({service.how})"
        level = Level.ERROR
    elif entry is not None and entry.authentication in _TRUSTED_AUTH:
        message = f"{service.label} reachable {through}, {entry.authentication.value} authentication " \
                  f"({service.how}): exposure the conduits allow"
        level = Level.OK
    else:
        auth = f"{entry.authentication.value} authentication, {service.how}" if entry is not None else "unknown"
        message = f"{service.label} reachable {through} ({auth})"
        level = Level.WARN
    return level, message, [("conduits", names), ("from_zones", zones)]


def _open_port_finding(network: NetworkPolicy, place: HostPlace, service: OpenService) -> Finding:
    """The finding for one open port, judged by the conduits that reach it."""
    conduits = conduits_to(network, place, service.result.port)
    values = service.values(place.values)
    if conduits:
        level, message, extra = _through_conduits(service, conduits)
        values += extra
    else:
        values.append(("conduits", ""))
        level = Level.WARN
        auth = f"{service.entry.authentication.value} authentication; " if service.entry is not None else ""
        message = f"{service.label} ({auth}{place.description}) open on the host, blocked at the gateway by " \
                  "default deny (no conduit): close it or keep it in-zone (SR 7.7 least functionality)"
    return Finding(checks.SERVICE_EXPOSURE, f"{service.host}:{service.result.port}", level, message, tuple(values))


def _idle_conduit_notes(network: NetworkPolicy, place: HostPlace, host_address: str, open_numbers: set[int],
                        scanned: set[int] | None) -> list[Finding]:
    """An OK note per conduit port of the host that was scanned (or assumed so) and found closed."""
    allowed: dict[int, list[Conduit]] = {}
    for conduit in network.conduits:
        if conduit.protocol != Protocol.TCP:
            continue
        for port in network.conduit_ports(conduit):
            if port not in open_numbers and (scanned is None or port in scanned) \
                    and conduit in conduits_to(network, place, port):
                allowed.setdefault(port, []).append(conduit)
    notes: list[Finding] = []
    for port in sorted(allowed):
        names, zones = _names(allowed[port])
        notes.append(Finding(checks.SERVICE_EXPOSURE, f"{host_address}:{port}", Level.OK,
                             f"conduit {names} allows tcp/{port} from zone {zones}; nothing listens",
                             (("host", host_address), ("port", str(port)), *place.values,
                              ("conduits", names), ("from_zones", zones))))
    return notes


def compare_with_conduits(
    network: NetworkPolicy,
    host_address: str,
    open_ports: Sequence[OpenPortLike],
    catalog: ServiceCatalog,
    scanned_ports: Iterable[int] | None = None,
) -> list[Finding]:
    """SERVICE_EXPOSURE findings for one scanned host, judged against the conduits of ``network``.

    ``open_ports`` are the scan's results for ``host_address`` (items with ``port`` and, optionally,
    ``banner`` and ``open``; items with ``open`` false count as scanned and closed).
    ``scanned_ports`` names every port the scan tried; when None, the closed items of
    ``open_ports`` are taken as scanned, or, when there are none, every conduit port is assumed
    scanned.  A conduit port that was not scanned gets no note.
    """
    results = [_as_result(host_address, item) for item in open_ports]
    place = locate_host(network, host_address)
    if place is None:
        return _not_in_network(network, host_address, results, catalog)
    opened = sorted({r.port: r for r in results if r.open}.values(), key=lambda r: r.port)
    scanned = _scanned(results, scanned_ports)
    findings: list[Finding] = []
    if not opened:
        closed = sorted(scanned or ())
        findings.append(Finding(checks.SERVICE_EXPOSURE, host_address, Level.OK,
                                f"no catalogued service reachable ({len(closed)} ports closed; {place.description})",
                                (("ports_scanned", " ".join(map(str, closed))), *place.values)))
    findings += [_open_port_finding(network, place, describe_open_port(host_address, result, catalog))
                 for result in opened]
    findings += _idle_conduit_notes(network, place, host_address, {r.port for r in opened}, scanned)
    return findings
