"""Scan targets: which hosts a scan may touch (loopback, or named in the network configuration).

A scan refuses any other host unless ad-hoc targets are explicitly allowed (``--allow-adhoc``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from pathlib import Path

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from cobot_security.errors import InputError
from cobot_security.yaml_source import compose_yaml, line_of, read_yaml_file

__all__ = [
    "check_targets",
    "is_loopback",
    "read_configured_hosts",
]

_LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost", "ip6-loopback"})


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
