"""The controller service catalog (``policies/controller_services.yaml``): types and the validating loader.

Each entry names a vendor service, where it listens, how it authenticates its clients and, optionally,
the banner that identifies it; the file is validated like every data file (unknown keys rejected,
errors name file, line and field).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from yaml.nodes import Node

from cobot_security.names import is_snake_case
from cobot_security.yaml_source import (
    YamlContext,
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

__all__ = [
    "Authentication",
    "ServiceCatalog",
    "ServiceEntry",
    "load_service_catalog",
    "load_service_catalog_text",
]

CATALOG_VERSION = 1
_TOP_KEYS = ("version", "services")
_SERVICE_KEYS = ("vendor", "service", "port", "protocol", "authentication", "references", "banner",
                 "description")


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


def _service(node: Node, ctx: YamlContext) -> ServiceEntry:
    keys = read_mapping(node, ctx, _SERVICE_KEYS, "a service mapping with vendor, service, port, protocol, "
                                                 "authentication, references")
    vendor = read_string(require_key(keys, "vendor", node, ctx)[1], ctx.child("vendor"), "a vendor name")
    service_node = require_key(keys, "service", node, ctx)[1]
    service = read_string(service_node, ctx.child("service"), "a snake_case service name")
    if not is_snake_case(service):
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
