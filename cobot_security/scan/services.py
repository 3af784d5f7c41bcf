"""Controller service exposure: a bounded, rate-limited TCP connect scan against a service catalog.

Three parts: the catalog (``policies/controller_services.yaml``, validated like every data file),
the safety rails (only configured or loopback hosts unless ad-hoc targets are allowed; hard caps
on concurrency, rate and timeouts) and the scan itself (asyncio, one semaphore, one pacing lock,
a banner read with a timeout).  :func:`judge_exposure` turns port results into SERVICE_EXPOSURE
findings and is pure.  IEC 62443-3-3 SR 7.7 (least functionality), SR 5.1/5.2.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from cobot_security import checks
from cobot_security.errors import InputError
from cobot_security.status import Finding, Level
from cobot_security.yaml_source import (
    YamlContext,
    compose_yaml,
    line_of,
    read_choice,
    read_document,
    read_integer,
    read_mapping,
    read_sequence,
    read_string,
    read_yaml_file,
    require_key,
)

if TYPE_CHECKING:
    from cobot_security.network.model import NetworkPolicy

__all__ = [
    "Authentication",
    "MAX_CONCURRENCY",
    "MAX_RATE",
    "MAX_TIMEOUT_S",
    "PortResult",
    "ScanLimits",
    "ServiceCatalog",
    "ServiceEntry",
    "check_targets",
    "is_loopback",
    "judge_exposure",
    "load_service_catalog",
    "load_service_catalog_text",
    "read_configured_hosts",
    "scan_ports",
    "scan_services",
]

CATALOG_VERSION = 1
#: Hard caps: a scan never opens more connections at once, or starts them faster, than this.
MAX_CONCURRENCY = 64
MAX_RATE = 200.0
MAX_TIMEOUT_S = 30.0
BANNER_BYTES = 512
_TOP_KEYS = ("version", "services")
_SERVICE_KEYS = ("vendor", "service", "port", "protocol", "authentication", "references", "banner",
                 "description")
_SNAKE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
_LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost", "ip6-loopback"})


class Authentication(str, Enum):
    """How a catalogued service authenticates its clients; ``none`` reachable is an ERROR."""

    NONE = "none"
    PASSWORD = "password"
    CERTIFICATE = "certificate"
    KEY = "key"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class ServiceEntry:
    """One catalogued service: who ships it, where it listens, how it authenticates, how to spot it."""

    vendor: str
    service: str
    port: int
    protocol: str
    authentication: Authentication
    references: tuple[str, ...]
    banner: re.Pattern[str] | None = None
    description: str = ""


@dataclass(frozen=True)
class ServiceCatalog:
    """The validated catalog, in file order."""

    version: int
    services: tuple[ServiceEntry, ...]
    source: str

    @property
    def tcp_ports(self) -> tuple[int, ...]:
        """Catalogued TCP ports, sorted, each once."""
        return tuple(sorted({entry.port for entry in self.services if entry.protocol == "tcp"}))

    def entries_for(self, port: int) -> tuple[ServiceEntry, ...]:
        """The TCP entries catalogued on ``port``."""
        return tuple(e for e in self.services if e.port == port and e.protocol == "tcp")


# --- catalog ------------------------------------------------------------------------------------

def _service(node: Node, ctx: YamlContext) -> ServiceEntry:
    keys = read_mapping(node, ctx, _SERVICE_KEYS, "a service mapping with vendor, service, port, protocol, "
                                                 "authentication, references")
    vendor = read_string(require_key(keys, "vendor", node, ctx)[1], ctx.child("vendor"), "a vendor name")
    service_node = require_key(keys, "service", node, ctx)[1]
    service = read_string(service_node, ctx.child("service"), "a snake_case service name")
    if not _SNAKE.match(service):
        raise ctx.child("service").error(service_node, "a snake_case service name", repr(service))
    port_node = require_key(keys, "port", node, ctx)[1]
    port = read_integer(port_node, ctx.child("port"), "a port 1-65535")
    if not 1 <= port <= 65535:
        raise ctx.child("port").error(port_node, "a port 1-65535", str(port))
    protocol_node = require_key(keys, "protocol", node, ctx)[1]
    protocol = read_string(protocol_node, ctx.child("protocol"), "tcp or udp")
    if protocol not in ("tcp", "udp"):
        raise ctx.child("protocol").error(protocol_node, "tcp or udp", repr(protocol))
    authentication = read_choice(require_key(keys, "authentication", node, ctx)[1], ctx.child("authentication"),
                                 Authentication)
    refs_node = require_key(keys, "references", node, ctx)[1]
    rctx = ctx.child("references")
    references = tuple(read_string(item, rctx.item(i), "a non-empty reference")
                       for i, item in enumerate(read_sequence(refs_node, rctx, "a list of references")))
    if not references:
        raise rctx.error(refs_node, "at least one reference", "an empty list")
    banner = None
    if "banner" in keys:
        banner_node = keys["banner"][1]
        pattern = read_string(banner_node, ctx.child("banner"), "a regular expression")
        try:
            banner = re.compile(pattern)
        except re.error as exc:
            raise ctx.child("banner").error(banner_node, "a valid regular expression", f"{pattern!r} ({exc})") from None
    description = ""
    if "description" in keys:
        description = read_string(keys["description"][1], ctx.child("description"), "a description").strip()
    return ServiceEntry(vendor, service, port, protocol, authentication, references, banner, description)


def load_service_catalog_text(text: str, source: str) -> ServiceCatalog:
    """Parse and validate catalog YAML ``text``; ``source`` names it in errors.

    :raises InputError: on YAML errors, unknown keys, bad values or a duplicate (service, port).
    """
    document = read_document(text, source, _TOP_KEYS, "a catalog mapping with version and services",
                             CATALOG_VERSION)
    root, keys, ctx = document.root, document.keys, document.ctx
    node = require_key(keys, "services", root, ctx)[1]
    sctx = ctx.child("services")
    items = read_sequence(node, sctx, "a non-empty list of services")
    if not items:
        raise sctx.error(node, "a non-empty list of services", "an empty list")
    services: list[ServiceEntry] = []
    seen: dict[tuple[str, int, str], int | None] = {}
    for index, item in enumerate(items):
        entry = _service(item, sctx.item(index))
        key = (entry.service, entry.port, entry.protocol)
        if key in seen:
            raise sctx.item(index).error(item, f"each service/port once (first defined at line {seen[key]})",
                                         f"{entry.service} on {entry.protocol}/{entry.port} again")
        seen[key] = line_of(item)
        services.append(entry)
    return ServiceCatalog(document.version, tuple(services), source)


def load_service_catalog(path: Path | str) -> ServiceCatalog:
    """Read and validate the service catalog at ``path``.

    :raises InputError: when the file cannot be read or is not a valid catalog.
    """
    return load_service_catalog_text(read_yaml_file(path, "service catalog"), str(path))


# --- safety rails -------------------------------------------------------------------------------

def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback name or address (127.0.0.0/8, ::1)."""
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host_strings(node: Node) -> list[str]:
    """Host names/addresses of one ``hosts`` item: a string, or a mapping's name/address values."""
    if isinstance(node, ScalarNode):
        return [str(node.value)] if node.value else []
    found: list[str] = []
    if isinstance(node, MappingNode):
        for key, value in node.value:
            if isinstance(key, ScalarNode) and key.value in ("name", "address", "host", "ip") \
                    and isinstance(value, ScalarNode) and value.value:
                found.append(str(value.value))
            elif isinstance(key, ScalarNode) and key.value == "addresses" and isinstance(value, SequenceNode):
                found.extend(str(v.value) for v in value.value if isinstance(v, ScalarNode) and v.value)
    return found


def _hosts_of(node: Node) -> list[str]:
    """Names and addresses in a ``hosts`` value: a mapping name → address, or a list of items."""
    if isinstance(node, MappingNode):
        found: list[str] = []
        for key, value in node.value:
            if isinstance(key, ScalarNode) and key.value:
                found.append(str(key.value))
            found.extend(_host_strings(value))
        return found
    if isinstance(node, SequenceNode):
        return [host for item in node.value for host in _host_strings(item)]
    return _host_strings(node)


def read_configured_hosts(path: Path | str) -> frozenset[str]:
    """Host names and addresses a configuration file names as scan targets (possibly none).

    Understands the network file (``zones.<zone>.hosts``: a mapping host name → address, or a list
    of names / mappings with name and address) and a plain top-level ``hosts:``; the network
    loader owns the rest of that schema, so other keys are not validated here.

    :raises InputError: when the file is unreadable, not YAML or not a mapping.
    """
    source = str(path)
    root = compose_yaml(read_yaml_file(path, "hosts file"), source)
    if not isinstance(root, MappingNode):
        raise InputError(source, None, "a mapping with zones.<zone>.hosts or hosts",
                         "an empty document" if root is None else "no mapping", line_of(root))
    hosts: list[str] = []
    for key, value in root.value:
        if not isinstance(key, ScalarNode):
            continue
        if key.value == "hosts":
            hosts.extend(_hosts_of(value))
        elif key.value == "zones":
            zones = [zone for _, zone in value.value] if isinstance(value, MappingNode) else \
                list(value.value) if isinstance(value, SequenceNode) else []
            for zone in zones:
                if not isinstance(zone, MappingNode):
                    continue
                for zkey, zvalue in zone.value:
                    if isinstance(zkey, ScalarNode) and zkey.value == "hosts":
                        hosts.extend(_hosts_of(zvalue))
    return frozenset(hosts)


def check_targets(hosts: Iterable[str], configured: frozenset[str], allow_adhoc: bool) -> None:
    """Refuse targets that are neither loopback nor configured, unless ad-hoc scans are allowed.

    :raises InputError: naming the first such target (exit 2).
    """
    if allow_adhoc:
        return
    for host in hosts:
        if not is_loopback(host) and host not in configured:
            raise InputError(None, "HOST", "a host named in the network configuration (zones.*.hosts, "
                             "--hosts-from) or a loopback address; pass --allow-adhoc to scan others",
                             repr(host))


@dataclass(frozen=True)
class ScanLimits:
    """Bounds of one scan: simultaneous connections, connection starts per second, per-step timeout."""

    concurrency: int = 16
    rate: float = 50.0
    timeout_s: float = 2.0

    def validate(self) -> ScanLimits:
        """Return self when within the hard caps.

        :raises InputError: for a value outside its cap.
        """
        if not 1 <= self.concurrency <= MAX_CONCURRENCY:
            raise InputError(None, "--concurrency", f"1 to {MAX_CONCURRENCY}", str(self.concurrency))
        if not 0 < self.rate <= MAX_RATE:
            raise InputError(None, "--rate", f"connections per second in (0, {MAX_RATE:g}]", str(self.rate))
        if not 0 < self.timeout_s <= MAX_TIMEOUT_S:
            raise InputError(None, "--timeout", f"seconds in (0, {MAX_TIMEOUT_S:g}]", str(self.timeout_s))
        return self


# --- scan ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PortResult:
    """What one TCP connect found: open or not, and the banner (decoded, possibly empty)."""

    host: str
    port: int
    open: bool
    banner: str = ""
    error: str = ""


class _Pacer:
    """Spaces connection starts at least ``1/rate`` seconds apart (one lock, monotonic clock)."""

    def __init__(self, rate: float) -> None:
        self._interval = 1.0 / rate
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self._lock:
            loop = asyncio.get_running_loop()
            delay = self._next - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self._next = loop.time() + self._interval


async def _probe_port(host: str, port: int, timeout_s: float) -> PortResult:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
    except (asyncio.TimeoutError, TimeoutError):
        return PortResult(host, port, False, error="timeout")
    except OSError as exc:
        return PortResult(host, port, False, error=exc.strerror or type(exc).__name__)
    banner = b""
    try:
        banner = await asyncio.wait_for(reader.read(BANNER_BYTES), timeout_s)
    except (asyncio.TimeoutError, TimeoutError, OSError):
        banner = b""
    finally:
        writer.close()
        try:
            await asyncio.wait_for(writer.wait_closed(), timeout_s)
        except (asyncio.TimeoutError, TimeoutError, OSError):
            pass
    return PortResult(host, port, True, banner.decode("utf-8", "replace").strip())


async def scan_ports(hosts: Sequence[str], ports: Sequence[int], limits: ScanLimits) -> list[PortResult]:
    """TCP connect every (host, port), at most ``limits.concurrency`` at once and ``limits.rate``
    starts per second, each connect and banner read bounded by ``limits.timeout_s``.
    """
    limits.validate()
    semaphore = asyncio.Semaphore(limits.concurrency)
    pacer = _Pacer(limits.rate)

    async def one(host: str, port: int) -> PortResult:
        async with semaphore:
            await pacer.wait()
            return await _probe_port(host, port, limits.timeout_s)

    return list(await asyncio.gather(*(one(h, p) for h in hosts for p in ports)))


# --- judgement ----------------------------------------------------------------------------------

def _identify(result: PortResult, catalog: ServiceCatalog) -> tuple[ServiceEntry | None, bool]:
    """(catalog entry, identified by banner) for an open port; presumed by port when no banner matches."""
    entries = catalog.entries_for(result.port)
    for entry in entries:
        if entry.banner is not None and result.banner and entry.banner.search(result.banner):
            return entry, True
    return (entries[0], False) if entries else (None, False)


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
        for result in opened:
            entry, by_banner = _identify(result, catalog)
            subject = f"{host}:{result.port}"
            values: list[tuple[str, str]] = [("host", host), ("port", str(result.port))]
            if result.banner:
                values.append(("banner", result.banner[:120]))
            if entry is None:
                findings.append(Finding(checks.SERVICE_EXPOSURE, subject, Level.WARN,
                                        f"port {result.port} open, service not in the catalog", tuple(values)))
                continue
            how = "identified by banner" if by_banner else "presumed from the port"
            values += [("service", entry.service), ("vendor", entry.vendor),
                       ("authentication", entry.authentication.value), ("references", "; ".join(entry.references)),
                       ("evidence", how)]
            if entry.authentication == Authentication.NONE:
                level = Level.ERROR
                message = f"{entry.vendor} {entry.service} reachable without authentication ({how})"
            else:
                level = Level.WARN
                message = f"{entry.vendor} {entry.service} reachable ({entry.authentication.value} " \
                          f"authentication, {how})"
            findings.append(Finding(checks.SERVICE_EXPOSURE, subject, level, message, tuple(values)))
    return findings


def scan_services(
    hosts: Sequence[str], ports: Sequence[int], catalog: ServiceCatalog, limits: ScanLimits,
    network: NetworkPolicy | None = None,
) -> list[Finding]:
    """Scan ``ports`` of ``hosts`` within ``limits`` and judge the result (targets checked by the caller).

    With ``network``, each host's results are compared with the exposure its conduits allow
    (:func:`cobot_security.scan.exposure.compare_with_conduits`); without, :func:`judge_exposure`.

    :raises InputError: for limits outside their caps or a port outside 1-65535.
    """
    limits.validate()
    for port in ports:
        if not 1 <= port <= 65535:
            raise InputError(None, "--ports", "ports 1-65535", str(port))
    results = asyncio.run(scan_ports(list(hosts), list(ports), limits))
    if network is None:
        return judge_exposure(results, catalog)
    from cobot_security.scan.exposure import (
        compare_with_conduits,  # exposure imports this module
    )

    findings: list[Finding] = []
    for host in dict.fromkeys(r.host for r in results):
        findings += compare_with_conduits(network, host, [r for r in results if r.host == host], catalog,
                                          scanned_ports=ports)
    return findings
