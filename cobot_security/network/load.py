"""``policies/network.yaml`` → :class:`NetworkPolicy`, strictly: unknown keys, bad CIDRs, hosts outside
their zone, overlapping zones and conduits naming unknown zones or hosts are errors that read
``<file>:<line>: <field>: expected X, got Y``.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

from yaml.nodes import Node

from cobot_security.errors import InputError
from cobot_security.network.model import (
    DDS_SERVICE,
    SERVICE_PORTS,
    Conduit,
    DiscoveryRange,
    Host,
    NetworkPolicy,
    Protocol,
    Zone,
)
from cobot_security.network.rtps import MAX_DOMAIN_ID, compute_rtps_ports
from cobot_security.yaml_source import (
    YamlContext,
    describe_node,
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

__all__ = ["NetworkError", "load_network", "parse_network"]

SUPPORTED_VERSION = 1
_NAME = re.compile(r"[a-z][a-z0-9_]*")
# Linux interface names: at most 15 bytes, no '/', whitespace or quotes (they end up in nft strings).
_IFNAME = re.compile(r"[A-Za-z0-9_.@:-]{1,15}")


class NetworkError(InputError):
    """The network (zones and conduits) file is malformed or inconsistent; exit 2."""


def load_network(path: Path | str, default_domain_ids: tuple[int, ...] | None = None) -> NetworkPolicy:
    """Read and validate the network file at ``path``.

    ``default_domain_ids`` (usually the workcell policy's ``domain_ids``) is used when the file has
    no ``dds.domain_ids``.

    :raises NetworkError: when the file is unreadable or invalid.
    """
    text = read_yaml_file(path, "network file", NetworkError)
    return parse_network(text, str(path), default_domain_ids)


def _name(node: Node, ctx: YamlContext, what: str) -> str:
    value = read_string(node, ctx, what)
    if not _NAME.fullmatch(value):
        raise ctx.error(node, what + " (lower-case letters, digits, '_', starting with a letter)", repr(value))
    return value


def _read_dds(node: Node | None, ctx: YamlContext,
              default_domain_ids: tuple[int, ...] | None) -> tuple[tuple[int, ...], int, DiscoveryRange]:
    keys = read_mapping(node, ctx, ("domain_ids", "participants", "discovery_range")) if node is not None else {}
    domain_ids: tuple[int, ...] | None = default_domain_ids
    if "domain_ids" in keys:
        dctx = ctx.child("domain_ids")
        items = read_sequence(keys["domain_ids"][1], dctx, "a list of domain ids")
        values = [read_integer(item, dctx.item(i), f"a domain id 0..{MAX_DOMAIN_ID}") for i, item in enumerate(items)]
        for i, (item, value) in enumerate(zip(items, values)):
            if not 0 <= value <= MAX_DOMAIN_ID:
                raise dctx.item(i).error(item, f"a domain id 0..{MAX_DOMAIN_ID}", str(value))
        if not values or len(set(values)) != len(values):
            raise dctx.error(keys["domain_ids"][1], "a non-empty list of distinct domain ids",
                             describe_node(keys["domain_ids"][1]))
        domain_ids = tuple(values)
    if not domain_ids:
        raise ctx.child("domain_ids").error(
            node, "domain ids here or from the workcell policy (--policy)", "nothing")
    participants = 10
    if "participants" in keys:
        pnode = keys["participants"][1]
        participants = read_integer(pnode, ctx.child("participants"), "participants per host 1..120")
        if not 1 <= participants <= 120:
            raise ctx.child("participants").error(pnode, "participants per host 1..120", str(participants))
    for domain_id in domain_ids:
        try:
            compute_rtps_ports(domain_id, participants)
        except ValueError as exc:
            raise ctx.child("participants").error(keys["participants"][1] if "participants" in keys else node,
                                                  "participant ports below 65536", str(exc)) from None
    discovery = DiscoveryRange.SUBNET
    if "discovery_range" in keys:
        discovery = read_choice(keys["discovery_range"][1], ctx.child("discovery_range"), DiscoveryRange,
                                "SUBNET or LOCALHOST")
    return domain_ids, participants, discovery


def _read_address(node: Node, ctx: YamlContext) -> ipaddress.IPv4Address:
    value = read_string(node, ctx, "an IPv4 address")
    try:
        return ipaddress.IPv4Address(value)
    except ValueError:
        raise ctx.error(node, "an IPv4 address like 10.10.1.20", repr(value)) from None


def _read_zone(name: str, node: Node, ctx: YamlContext, interface: str) -> Zone:
    keys = read_mapping(node, ctx, ("subnets", "vlan_id", "hosts", "description"), "a zone mapping")
    snode = require_key(keys, "subnets", node, ctx)[1]
    sctx = ctx.child("subnets")
    subnets: list[ipaddress.IPv4Network] = []
    for i, item in enumerate(read_sequence(snode, sctx, "a list of CIDR subnets")):
        text = read_string(item, sctx.item(i), "a CIDR subnet")
        try:
            subnets.append(ipaddress.IPv4Network(text, strict=True))
        except ValueError as exc:
            raise sctx.item(i).error(item, "an IPv4 CIDR subnet with host bits zero, like 10.10.1.0/24",
                                     f"{text!r} ({exc})") from None
    if not subnets:
        raise sctx.error(snode, "at least one subnet", "an empty list")
    vlan_id = None
    if "vlan_id" in keys:
        vnode = keys["vlan_id"][1]
        vlan_id = read_integer(vnode, ctx.child("vlan_id"), "a VLAN id 1..4094")
        if not 1 <= vlan_id <= 4094:
            raise ctx.child("vlan_id").error(vnode, "a VLAN id 1..4094", str(vlan_id))
    if "description" in keys:
        read_string(keys["description"][1], ctx.child("description"))
    hosts: list[Host] = []
    if "hosts" in keys:
        hctx = ctx.child("hosts")
        for host_name, (key_node, value_node) in read_mapping(keys["hosts"][1], hctx, (),
                                                              "a mapping host name → address",
                                                               "host").items():
            _name(key_node, hctx, "a host name")
            address = _read_address(value_node, hctx.child(host_name))
            if not any(address in subnet for subnet in subnets):
                raise hctx.child(host_name).error(
                    value_node, f"an address inside the zone's subnets ({', '.join(map(str, subnets))})", str(address))
            hosts.append(Host(host_name, address, line_of(key_node)))
    return Zone(name, tuple(subnets), interface, vlan_id, tuple(hosts), line_of(node))


def _read_gateway(node: Node, ctx: YamlContext) -> dict[str, tuple[str, Node]]:
    keys = read_mapping(node, ctx, ("interfaces",), "a gateway mapping")
    inode = require_key(keys, "interfaces", node, ctx)[1]
    ictx = ctx.child("interfaces")
    result: dict[str, tuple[str, Node]] = {}
    used: dict[str, str] = {}
    for zone_name, (key_node, value_node) in read_mapping(inode, ictx, (), "a mapping zone → interface",
                                                          "zone").items():
        value = read_string(value_node, ictx.child(zone_name), "an interface name")
        if not _IFNAME.fullmatch(value):
            raise ictx.child(zone_name).error(value_node, "a Linux interface name (1-15 of A-Z a-z 0-9 _ . @ : -)",
                                              repr(value))
        if value in used:
            raise ictx.child(zone_name).error(value_node, f"an interface of its own (zone {used[value]} uses it)",
                                              repr(value))
        used[value] = zone_name
        result[zone_name] = (value, key_node)
    return result


def _read_names(node: Node, ctx: YamlContext, zone: Zone) -> tuple[str, ...]:
    names = []
    for i, item in enumerate(read_sequence(node, ctx, "a list of host names")):
        value = read_string(item, ctx.item(i), "a host name")
        if zone.host(value) is None:
            known = ", ".join(h.name for h in zone.hosts) or "none"
            raise ctx.item(i).error(item, f"a host of zone {zone.name} ({known})", repr(value))
        names.append(value)
    if not names:
        raise ctx.error(node, "at least one host (omit the key for the whole zone)", "an empty list")
    return tuple(names)


def _read_conduit(node: Node, ctx: YamlContext, zones: dict[str, Zone]) -> Conduit:
    allowed = ("name", "from", "to", "from_hosts", "to_hosts", "protocol", "ports", "service", "purpose")
    keys = read_mapping(node, ctx, allowed, "a conduit mapping")
    name = _name(require_key(keys, "name", node, ctx)[1], ctx.child("name"), "a conduit name")
    ends = {}
    for side in ("from", "to"):
        znode = require_key(keys, side, node, ctx)[1]
        zone_name = read_string(znode, ctx.child(side), "a zone name")
        if zone_name not in zones:
            raise ctx.child(side).error(znode, "one of the zones " + ", ".join(zones), repr(zone_name))
        ends[side] = (zone_name, znode)
    if ends["from"][0] == ends["to"][0]:
        raise ctx.child("to").error(ends["to"][1],
                                    "a zone other than 'from' (traffic inside a zone does not cross the gateway)",
                                    repr(ends["to"][0]))
    purpose = read_string(require_key(keys, "purpose", node, ctx)[1], ctx.child("purpose"), "a purpose sentence")
    if ("ports" in keys) == ("service" in keys):
        raise ctx.error(node, "exactly one of 'ports' or 'service'", "both" if "ports" in keys else "neither")
    service: str | None = None
    ports: tuple[int, ...] = ()
    implied: str | None = None
    if "service" in keys:
        snode = keys["service"][1]
        service = read_string(snode, ctx.child("service"), "a service name")
        if service == DDS_SERVICE:
            implied = "udp"
        elif service in SERVICE_PORTS:
            implied, ports = SERVICE_PORTS[service]
        else:
            raise ctx.child("service").error(snode, "one of " + ", ".join([DDS_SERVICE, *SERVICE_PORTS]), repr(service))
    else:
        pctx = ctx.child("ports")
        items = read_sequence(keys["ports"][1], pctx, "a list of ports")
        values = []
        for i, item in enumerate(items):
            port = read_integer(item, pctx.item(i), "a port 1..65535")
            if not 1 <= port <= 65535:
                raise pctx.item(i).error(item, "a port 1..65535", str(port))
            values.append(port)
        if not values:
            raise pctx.error(keys["ports"][1], "at least one port", "an empty list")
        ports = tuple(values)
    if "protocol" in keys:
        prnode = keys["protocol"][1]
        value = read_string(prnode, ctx.child("protocol"), "tcp or udp")
        if value not in ("tcp", "udp"):
            raise ctx.child("protocol").error(prnode, "tcp or udp", repr(value))
        if implied is not None and value != implied:
            raise ctx.child("protocol").error(prnode, f"{implied} (service {service} runs on {implied})", repr(value))
        protocol = Protocol(value)
    elif implied is not None:
        protocol = Protocol(implied)
    else:
        raise ctx.child("protocol").error(node, "a required key 'protocol' (tcp or udp) with explicit ports", "nothing")
    hosts = {}
    for side, key in (("from", "from_hosts"), ("to", "to_hosts")):
        hosts[side] = _read_names(keys[key][1], ctx.child(key), zones[ends[side][0]]) if key in keys else ()
    return Conduit(name, ends["from"][0], ends["to"][0], protocol, ports, service, purpose,
                   hosts["from"], hosts["to"], line_of(node))


def parse_network(text: str, source: str, default_domain_ids: tuple[int, ...] | None = None) -> NetworkPolicy:
    """Validate network YAML ``text`` (``source`` names it in errors); see :func:`load_network`.

    :raises NetworkError: on any schema or consistency problem.
    """
    doc = read_document(text, source, ("version", "name", "dds", "zones", "gateway", "conduits"),
                        "a network mapping with version, zones, gateway and conduits", SUPPORTED_VERSION, NetworkError)
    ctx, keys, root = doc.ctx, doc.keys, doc.root
    name = read_string(require_key(keys, "name", root, ctx)[1], ctx.child("name"), "a cell name")
    domain_ids, participants, discovery = _read_dds(keys["dds"][1] if "dds" in keys else None, ctx.child("dds"),
                                                    default_domain_ids)
    gnode = require_key(keys, "gateway", root, ctx)[1]
    interfaces = _read_gateway(gnode, ctx.child("gateway"))
    znode = require_key(keys, "zones", root, ctx)[1]
    zctx = ctx.child("zones")
    zones: dict[str, Zone] = {}
    for zone_name, (key_node, value_node) in read_mapping(znode, zctx, (), "a mapping of zones", "zone").items():
        _name(key_node, zctx, "a zone name")
        if zone_name not in interfaces:
            raise ctx.child("gateway").child("interfaces").child(zone_name).error(
                gnode, f"the gateway interface facing zone {zone_name}", "nothing")
        zones[zone_name] = _read_zone(zone_name, value_node, zctx.child(zone_name), interfaces[zone_name][0])
    if len(zones) < 2:
        raise zctx.error(znode, "at least two zones", f"{len(zones)}")
    for zone_name, (_, key_node) in interfaces.items():
        if zone_name not in zones:
            raise ctx.child("gateway").child("interfaces").child(zone_name).error(
                key_node, "one of the zones " + ", ".join(zones), repr(zone_name))
    seen_hosts: dict[str, str] = {}
    zone_list = list(zones.values())
    for i, zone in enumerate(zone_list):
        for other in zone_list[:i]:
            for subnet in zone.subnets:
                for theirs in other.subnets:
                    if subnet.overlaps(theirs):
                        raise zctx.child(zone.name).child("subnets").error(
                            keys["zones"][1], f"subnets apart from zone {other.name}'s {theirs}", str(subnet))
        for host in zone.hosts:
            if host.name in seen_hosts:
                raise NetworkError(source, f"zones.{zone.name}.hosts.{host.name}",
                                   f"a host name used once (zone {seen_hosts[host.name]} has it)", repr(host.name),
                                   host.line)
            seen_hosts[host.name] = zone.name
    cnode = require_key(keys, "conduits", root, ctx)[1]
    cctx = ctx.child("conduits")
    conduits: list[Conduit] = []
    for i, item in enumerate(read_sequence(cnode, cctx, "a list of conduits (may be empty: deny all)")):
        conduit = _read_conduit(item, cctx.item(i), zones)
        for earlier in conduits:
            if earlier.name == conduit.name:
                raise cctx.item(i).child("name").error(item, f"a unique conduit name (first at line {earlier.line})",
                                                       repr(conduit.name))
        conduits.append(conduit)
    return NetworkPolicy(doc.version, name, domain_ids, participants, discovery, tuple(zone_list), tuple(conduits),
                         source)
