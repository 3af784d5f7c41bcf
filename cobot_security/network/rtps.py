"""The DDSI-RTPS well-known port mapping (OMG DDSI-RTPS 2.x, section 9.6.1.1): ports from domain id.

Pure arithmetic, so the firewall, the ROS environment and the Cyclone DDS snippet all open exactly
the ports a participant of the domain will use:

* discovery (SPDP) multicast  PB + DG*d + d0
* discovery unicast           PB + DG*d + d1 + PG*i
* user (data) multicast       PB + DG*d + d2
* user unicast                PB + DG*d + d3 + PG*i

with the specification's defaults PB 7400, DG 250, PG 2, d0 0, d1 10, d2 1, d3 11, domain id
``d`` and participant index ``i``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "MAX_DOMAIN_ID",
    "RtpsPorts",
    "compress_ports",
    "compute_rtps_ports",
]

PORT_BASE = 7400
DOMAIN_GAIN = 250
PARTICIPANT_GAIN = 2
OFFSET_D0 = 0
OFFSET_D1 = 10
OFFSET_D2 = 1
OFFSET_D3 = 11
#: The highest domain id whose ports all stay below 65536 with the default gains (ROS 2 allows 0..232).
MAX_DOMAIN_ID = 232


@dataclass(frozen=True)
class RtpsPorts:
    """The UDP ports of one domain for participant indices ``0 .. participants - 1``."""

    domain_id: int
    participants: int
    discovery_multicast: int
    user_multicast: int
    discovery_unicast: tuple[int, ...]
    user_unicast: tuple[int, ...]

    @property
    def all_ports(self) -> tuple[int, ...]:
        """Every port of the domain, sorted, without duplicates."""
        return tuple(sorted({self.discovery_multicast, self.user_multicast,
                             *self.discovery_unicast, *self.user_unicast}))

    @property
    def unicast_ports(self) -> tuple[int, ...]:
        """The unicast ports only (multicast does not cross a router; these are what a gateway forwards)."""
        return tuple(sorted({*self.discovery_unicast, *self.user_unicast}))


def compute_rtps_ports(domain_id: int, participants: int = 10) -> RtpsPorts:
    """The RTPS ports of ``domain_id`` for ``participants`` participant indices on one host.

    :raises ValueError: when the domain id is outside 0..232, ``participants`` is not 1..120
        (higher indices would collide with the next domain's ports) or a port would pass 65535.
    """
    if isinstance(domain_id, bool) or not 0 <= domain_id <= MAX_DOMAIN_ID:
        raise ValueError(f"domain id must be 0..{MAX_DOMAIN_ID}, got {domain_id!r}")
    # PG*i + d3 must stay below DG so that domains do not overlap: 11 + 2*i < 250 -> i <= 119.
    if isinstance(participants, bool) or not 1 <= participants <= 120:
        raise ValueError(f"participants must be 1..120, got {participants!r}")
    base = PORT_BASE + DOMAIN_GAIN * domain_id
    highest = base + OFFSET_D3 + PARTICIPANT_GAIN * (participants - 1)
    if highest > 65535:
        raise ValueError(f"participants must be at most {(65535 - base - OFFSET_D3) // PARTICIPANT_GAIN + 1} "
                         f"in domain {domain_id} (port {highest} > 65535)")
    indices = range(participants)
    return RtpsPorts(
        domain_id=domain_id,
        participants=participants,
        discovery_multicast=base + OFFSET_D0,
        user_multicast=base + OFFSET_D2,
        discovery_unicast=tuple(base + OFFSET_D1 + PARTICIPANT_GAIN * i for i in indices),
        user_unicast=tuple(base + OFFSET_D3 + PARTICIPANT_GAIN * i for i in indices),
    )


def compress_ports(ports: tuple[int, ...] | list[int]) -> tuple[tuple[int, int], ...]:
    """Sorted ports folded into inclusive (first, last) runs: (7410, 7411, 7412) → ((7410, 7412),)."""
    runs: list[tuple[int, int]] = []
    for port in sorted(set(ports)):
        if runs and port == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], port)
        else:
            runs.append((port, port))
    return tuple(runs)
