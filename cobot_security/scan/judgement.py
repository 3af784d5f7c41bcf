"""Judgement of service scan results: what an open port is, and its SERVICE_EXPOSURE finding.

One description of an open port (:class:`OpenService`: the catalog entry identified by banner or
presumed from the port, and the values a finding carries) serves both judgements:
:func:`judge_exposure` here, for hosts judged on their own, and
:func:`cobot_security.scan.exposure.compare_with_conduits`, against the conduits of a network file.
Pure: no sockets, no files.  IEC 62443-3-3 SR 7.7 (least functionality).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cobot_security import checks
from cobot_security.scan.catalog import Authentication, ServiceCatalog, ServiceEntry
from cobot_security.scan.scanner import PortResult
from cobot_security.status import Finding, Level

__all__ = ["OpenService", "describe_open_port", "judge_exposure"]

#: A banner is cut to this many characters in a finding.
_BANNER_CHARS = 120


@dataclass(frozen=True)
class OpenService:
    """An open port of ``host``: the catalog entry it is (or None), and whether its banner said so."""

    host: str
    result: PortResult
    entry: ServiceEntry | None
    by_banner: bool

    @property
    def how(self) -> str:
        """How the service was recognised, as findings say it."""
        return "identified by banner" if self.by_banner else "presumed from the port"

    @property
    def label(self) -> str:
        """"<vendor> <service>", or the port when the catalog does not know it."""
        if self.entry is None:
            return f"port {self.result.port} (service not in the catalog)"
        return f"{self.entry.vendor} {self.entry.service}"

    @property
    def unauthenticated(self) -> bool:
        """Whether the catalog says the service takes no authentication."""
        return self.entry is not None and self.entry.authentication == Authentication.NONE

    def values(self, where: Sequence[tuple[str, str]] = ()) -> list[tuple[str, str]]:
        """The finding values: host, port, ``where`` (the host's place), banner, then the catalog entry."""
        values: list[tuple[str, str]] = [("host", self.host), ("port", str(self.result.port)), *where]
        if self.result.banner:
            values.append(("banner", self.result.banner[:_BANNER_CHARS]))
        if self.entry is not None:
            values += [("service", self.entry.service), ("vendor", self.entry.vendor),
                       ("authentication", self.entry.authentication.value),
                       ("references", "; ".join(self.entry.references)), ("evidence", self.how)]
        return values


def describe_open_port(host: str, result: PortResult, catalog: ServiceCatalog) -> OpenService:
    """The catalog entry whose banner matches ``result``, else the first entry on its port (presumed)."""
    entries = catalog.entries_for(result.port)
    for entry in entries:
        if entry.banner is not None and result.banner and entry.banner.search(result.banner):
            return OpenService(host, result, entry, True)
    return OpenService(host, result, entries[0] if entries else None, False)


def _judge_open(service: OpenService) -> Finding:
    subject = f"{service.host}:{service.result.port}"
    values = tuple(service.values())
    entry = service.entry
    if entry is None:
        return Finding(checks.SERVICE_EXPOSURE, subject, Level.WARN,
                       f"port {service.result.port} open, service not in the catalog", values)
    if service.unauthenticated:
        return Finding(checks.SERVICE_EXPOSURE, subject, Level.ERROR,
                       f"{service.label} reachable without authentication ({service.how})", values)
    return Finding(checks.SERVICE_EXPOSURE, subject, Level.WARN,
                   f"{service.label} reachable ({entry.authentication.value} authentication, {service.how})", values)


def judge_exposure(results: Sequence[PortResult], catalog: ServiceCatalog) -> list[Finding]:
    """SERVICE_EXPOSURE findings: one per open host:port, or one OK per host with nothing open.

    ERROR when the (identified or presumed) service takes no authentication; WARN for every other
    open port (password/certificate/key services, and ports the catalog does not know).
    """
    findings: list[Finding] = []
    hosts = list(dict.fromkeys(r.host for r in results))
    for host in hosts:
        mine = [r for r in results if r.host == host]
        opened = sorted((r for r in mine if r.open), key=lambda r: r.port)
        if not opened:
            ports = " ".join(str(r.port) for r in sorted(mine, key=lambda r: r.port))
            findings.append(Finding(checks.SERVICE_EXPOSURE, host, Level.OK,
                                    f"no catalogued service reachable ({len(mine)} ports closed)",
                                    (("ports_scanned", ports),)))
            continue
        findings += [_judge_open(describe_open_port(host, result, catalog)) for result in opened]
    return findings
