"""Environment probes: the ROS_SECURITY_* variables (SECURITY_ENV) and discovery exposure (DISCOVERY_EXPOSURE)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from cobot_security import checks
from cobot_security.policy.model import WorkcellPolicy
from cobot_security.status import Finding, Level


def probe_security_env(environ: Mapping[str, str], keystore: Path, subject: str) -> list[Finding]:
    """SECURITY_ENV: ROS_SECURITY_ENABLE=true, STRATEGY=Enforce, KEYSTORE resolving to ``keystore``.

    A process on rclpy wheels without DDS Security, or one started without these variables, runs
    unprotected; this finding is where that gap shows.
    """
    problems: list[str] = []
    enable = environ.get("ROS_SECURITY_ENABLE")
    if enable != "true":
        problems.append(f"ROS_SECURITY_ENABLE: expected true, got {enable if enable is not None else 'unset'}")
    strategy = environ.get("ROS_SECURITY_STRATEGY")
    if strategy != "Enforce":
        problems.append(f"ROS_SECURITY_STRATEGY: expected Enforce, got "
                        f"{strategy if strategy is not None else 'unset (Permissive)'}")
    configured = environ.get("ROS_SECURITY_KEYSTORE")
    if not configured:
        problems.append("ROS_SECURITY_KEYSTORE: expected the keystore path, got unset")
    elif os.path.realpath(configured) != os.path.realpath(keystore):
        problems.append(f"ROS_SECURITY_KEYSTORE: expected {keystore}, got {configured}")
    values = (("ros_security_enable", enable or ""), ("ros_security_strategy", strategy or ""),
              ("ros_security_keystore", configured or ""))
    if problems:
        return [Finding(checks.SECURITY_ENV, subject, Level.ERROR, "; ".join(problems), values)]
    return [Finding(checks.SECURITY_ENV, subject, Level.OK, "DDS Security enabled and enforced", values)]


_OPEN_RANGES = ("SUBNET", "SYSTEM_DEFAULT")
_CLOSED_RANGES = ("LOCALHOST", "OFF")


def probe_discovery(environ: Mapping[str, str], policy: WorkcellPolicy, subject: str) -> list[Finding]:
    """DISCOVERY_EXPOSURE: the domain is the policy's and discovery is not open without need.

    Rule (ROS 2 Iron+ variables):

    * ERROR when ``ROS_DOMAIN_ID`` (default 0) is not an integer or not in ``policy.domain_ids``:
      the grants are not valid there, or the cell talks to a foreign domain.
    * OK when ``ROS_LOCALHOST_ONLY=1``, ``ROS_AUTOMATIC_DISCOVERY_RANGE`` is LOCALHOST or OFF, or
      ``ROS_STATIC_PEERS`` names the peers.
    * WARN when the range is unset, SUBNET or SYSTEM_DEFAULT with no static peers: every host on
      the subnet can discover the cell (an unrecognised range value is WARN too).
    """
    raw_domain = environ.get("ROS_DOMAIN_ID", "").strip()
    range_ = environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE", "").strip().upper()
    peers = environ.get("ROS_STATIC_PEERS", "").strip()
    localhost_only = environ.get("ROS_LOCALHOST_ONLY", "").strip() == "1"
    values = (("domain_id", raw_domain or "0"), ("discovery_range", range_ or "unset"),
              ("static_peers", peers))

    def finding(level: Level, message: str) -> list[Finding]:
        return [Finding(checks.DISCOVERY_EXPOSURE, subject, level, message, values)]

    try:
        domain = int(raw_domain) if raw_domain else 0
    except ValueError:
        return finding(Level.ERROR, f"ROS_DOMAIN_ID: expected an integer, got {raw_domain!r}")
    if domain not in policy.domain_ids:
        allowed = ", ".join(str(d) for d in policy.domain_ids)
        return finding(Level.ERROR, f"ROS_DOMAIN_ID: expected one of {allowed} (the policy's), got {domain}")
    if localhost_only:
        return finding(Level.OK, "discovery limited to localhost (ROS_LOCALHOST_ONLY=1)")
    if range_ in _CLOSED_RANGES:
        return finding(Level.OK, f"discovery range {range_}")
    if peers:
        return finding(Level.OK, "discovery restricted to static peers")
    if range_ and range_ not in _OPEN_RANGES:
        return finding(Level.WARN, f"ROS_AUTOMATIC_DISCOVERY_RANGE: unrecognised value {range_!r}, "
                                   "discovery may be open to the subnet")
    return finding(Level.WARN, "discovery open to the whole subnet (no range limit, no static peers)")
