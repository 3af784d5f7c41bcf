"""Zones and conduits → the gateway's nftables ruleset, each host's ROS 2 environment and its Cyclone
DDS snippet.  Pure and deterministic: the same network file always renders the same bytes.

The ruleset is stateful and default-deny: established/related traffic passes, each conduit is one
``accept`` rule commented ``conduit:<name>`` for new flows only, and what falls through is logged
(rate-limited, prefix ``cobot-drop ``) and dropped by the chain policy.
"""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

from cobot_security.network.model import (
    Conduit,
    DiscoveryRange,
    Host,
    NetworkPolicy,
    Zone,
)
from cobot_security.network.rtps import compress_ports

__all__ = [
    "DROP_LOG_PREFIX",
    "FORMATS",
    "TABLE_FAMILY",
    "TABLE_NAME",
    "conduit_comment",
    "dds_peers",
    "render_conduit_table",
    "render_cyclonedds",
    "render_files",
    "render_nftables",
    "render_ros_env",
]

TABLE_FAMILY = "inet"
TABLE_NAME = "cobot_cell"
CHAIN_NAME = "forward"
DROP_LOG_PREFIX = "cobot-drop "
COMMENT_PREFIX = "conduit:"
FORMATS = ("nft", "env", "cyclonedds", "all")
#: At most this many drop log lines per minute, so a scan or flood cannot fill the journal.
DROP_LOG_RATE = "10/minute burst 5 packets"


def conduit_comment(conduit: Conduit) -> str:
    """The rule comment that names a conduit in the ruleset (and that ``network check`` looks for)."""
    return COMMENT_PREFIX + conduit.name


def _set(items: tuple[str, ...]) -> str:
    return items[0] if len(items) == 1 else "{ " + ", ".join(items) + " }"


def _ports(ports: tuple[int, ...]) -> str:
    runs = tuple(str(a) if a == b else f"{a}-{b}" for a, b in compress_ports(ports))
    return _set(runs)


def _conduit_rule(network: NetworkPolicy, conduit: Conduit) -> str:
    source = network.zone(conduit.from_zone)
    target = network.zone(conduit.to_zone)
    assert source is not None and target is not None  # guaranteed by the loader
    parts = [
        f'iifname "{source.gateway_interface}"',
        f'oifname "{target.gateway_interface}"',
        f"ip saddr {_set(network.endpoint_addresses(conduit, to_side=False))}",
        f"ip daddr {_set(network.endpoint_addresses(conduit, to_side=True))}",
        f"{conduit.protocol.value} dport {_ports(network.conduit_ports(conduit))}",
        "ct state new",
        "counter accept",
        f'comment "{conduit_comment(conduit)}"',
    ]
    return " ".join(parts)


def render_nftables(network: NetworkPolicy) -> str:
    """The gateway's ruleset as an ``nft -f`` file (idempotent: it replaces only its own table)."""
    lines = [
        "#!/usr/sbin/nft -f",
        f"# Cell gateway ruleset for {network.name}, rendered by `cobot-security network render`.",
        "# Do not edit: change the network file and render again.  Default deny (IEC 62443-3-3 SR 5.1/5.2).",
        "# Conduits (one-way; replies pass as established):",
    ]
    for conduit in network.conduits:
        lines.append(f"#   {conduit.name}: {conduit.from_zone} -> {conduit.to_zone} "
                     f"{conduit.protocol.value} {_ports(network.conduit_ports(conduit))}: {conduit.purpose}")
    lines += [
        "",
        # Create-then-delete makes the file load whether or not the table exists, without touching
        # any other table of the host.
        f"table {TABLE_FAMILY} {TABLE_NAME}",
        f"delete table {TABLE_FAMILY} {TABLE_NAME}",
        "",
        f"table {TABLE_FAMILY} {TABLE_NAME} {{",
        f"\tchain {CHAIN_NAME} {{",
        "\t\ttype filter hook forward priority filter; policy drop;",
        "\t\tct state established,related accept",
        "\t\tct state invalid drop",
    ]
    lines += [f"\t\t{_conduit_rule(network, conduit)}" for conduit in network.conduits]
    lines += [
        f'\t\tlimit rate {DROP_LOG_RATE} log prefix "{DROP_LOG_PREFIX}" level info',
        "\t}",
        "}",
    ]
    return "\n".join(lines) + "\n"


def _zone_of(network: NetworkPolicy, host: Host) -> Zone:
    for zone, candidate in network.hosts():
        if candidate.name == host.name:
            return zone
    raise KeyError(host.name)


def _side_hosts(network: NetworkPolicy, zone_name: str, names: tuple[str, ...]) -> tuple[Host, ...]:
    zone = network.zone(zone_name)
    if zone is None:
        return ()
    return tuple(h for h in zone.hosts if not names or h.name in names)


def dds_peers(network: NetworkPolicy, host: Host) -> tuple[str, ...]:
    """Addresses ``host`` must know as DDS unicast peers: the far ends of the DDS conduits it is on.

    DDS needs both directions, so either end of a ``dds`` conduit names the other.  Hosts of the
    host's own zone are found by SUBNET multicast discovery and are not listed.
    """
    peers: list[str] = []
    for conduit in network.conduits:
        if not conduit.is_dds:
            continue
        sources = _side_hosts(network, conduit.from_zone, conduit.from_hosts)
        targets = _side_hosts(network, conduit.to_zone, conduit.to_hosts)
        if host in sources:
            peers += [str(h.address) for h in targets]
        if host in targets:
            peers += [str(h.address) for h in sources]
    return tuple(sorted(set(peers), key=lambda a: tuple(int(x) for x in a.split("."))))


def render_ros_env(network: NetworkPolicy, host: Host) -> str:
    """``KEY=value`` lines (systemd EnvironmentFile, or ``set -a; . FILE``) for ROS 2 on ``host``.

    ``ROS_DOMAIN_ID`` is the first domain id; ``ROS_STATIC_PEERS`` lists the DDS peers across conduits.
    """
    zone = _zone_of(network, host)
    return (
        f"# ROS 2 environment for host {host.name} (zone {zone.name}) of {network.name};"
        " rendered by `cobot-security network render`\n"
        f"ROS_DOMAIN_ID={network.domain_ids[0]}\n"
        f"ROS_AUTOMATIC_DISCOVERY_RANGE={network.discovery_range.value}\n"
        f"ROS_STATIC_PEERS={';'.join(dds_peers(network, host))}\n"
    )


def render_cyclonedds(network: NetworkPolicy, host: Host) -> str:
    """A ``CYCLONEDDS_URI`` file for ``host``: only its own address, unicast peers, bounded indices.

    ``MaxAutoParticipantIndex`` keeps the unicast ports inside the range the gateway opens; SPDP
    multicast stays on the host's subnet (SUBNET) or is off (LOCALHOST).
    """
    zone = _zone_of(network, host)
    multicast = "spdp" if network.discovery_range is DiscoveryRange.SUBNET else "false"
    lines = [
        f"<!-- Cyclone DDS for host {host.name} (zone {zone.name}) of {network.name};"
        " rendered by cobot-security network render -->",
        '<CycloneDDS xmlns="https://cdds.io/config">',
    ]
    for domain_id in network.domain_ids:
        lines += [
            f'  <Domain id="{domain_id}">',
            "    <General>",
            "      <Interfaces>",
            f"        <NetworkInterface address={quoteattr(str(host.address))}/>",
            "      </Interfaces>",
            f"      <AllowMulticast>{multicast}</AllowMulticast>",
            "    </General>",
            "    <Discovery>",
            "      <ParticipantIndex>auto</ParticipantIndex>",
            f"      <MaxAutoParticipantIndex>{network.participants - 1}</MaxAutoParticipantIndex>",
            "      <Peers>",
        ]
        lines += [f"        <Peer address={quoteattr(peer)}/>" for peer in dds_peers(network, host)]
        lines += ["      </Peers>", "    </Discovery>", "  </Domain>"]
    lines.append("</CycloneDDS>")
    return "\n".join(lines) + "\n"


def render_conduit_table(network: NetworkPolicy) -> str:
    """A Markdown table of the conduits (for the docs and for reviewers of the ruleset)."""
    rows = ["| conduit | from | to | protocol | ports | purpose |", "|---|---|---|---|---|---|"]
    for conduit in network.conduits:
        src = ", ".join(network.endpoint_addresses(conduit, to_side=False))
        dst = ", ".join(network.endpoint_addresses(conduit, to_side=True))
        service = f" ({conduit.service})" if conduit.service else ""
        rows.append(f"| `{conduit_comment(conduit)}` | {conduit.from_zone} {src} | {conduit.to_zone} {dst} | "
                    f"{conduit.protocol.value}{service} | {_ports(network.conduit_ports(conduit))} | "
                    f"{conduit.purpose} |")
    return "\n".join(rows) + "\n"


def render_files(network: NetworkPolicy, fmt: str = "all") -> dict[str, str]:
    """Relative file name → text for format ``fmt`` (nft, env, cyclonedds or all), sorted by name.

    :raises ValueError: for an unknown format.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    files: dict[str, str] = {}
    if fmt in ("nft", "all"):
        files[f"{TABLE_NAME}.nft"] = render_nftables(network)
    for _, host in network.hosts():
        if fmt in ("env", "all"):
            files[f"env/{host.name}.env"] = render_ros_env(network, host)
        if fmt in ("cyclonedds", "all"):
            files[f"cyclonedds/{host.name}.xml"] = render_cyclonedds(network, host)
    return dict(sorted(files.items()))
