"""Compare a live nftables ruleset (``nft -j list ruleset``) with the conduits: missing conduits,
extra accepts, conduits whose ports or addresses drifted, and whether the forward policy is drop.

The result is one ``network_ruleset`` health Finding about the gateway (IEC 62443-3-3 SR 5.1,
SR 5.2), stored with its time so that the health reporter can publish it and the posture can
judge its age.  Only :func:`read_live_ruleset` runs a process; everything else is pure.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
import json
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cobot_security.atomic import write_bytes_atomic
from cobot_security.checks import NETWORK_RULESET
from cobot_security.clock import iso_utc
from cobot_security.errors import CobotSecurityError, InputError
from cobot_security.input_file import read_input_text
from cobot_security.json_input import parse_json
from cobot_security.network.model import NetworkPolicy
from cobot_security.network.render import (
    CHAIN_NAME,
    TABLE_FAMILY,
    TABLE_NAME,
    conduit_comment,
)
from cobot_security.status import Finding, Level, finding_from_json, finding_to_json

__all__ = [
    "GATEWAY_SUBJECT",
    "NetworkCheckRecord",
    "RulesetAnalysis",
    "analyse_ruleset",
    "check_ruleset",
    "read_live_ruleset",
    "read_network_check",
    "read_ruleset_file",
    "record_network_check",
]

GATEWAY_SUBJECT = "gateway"
REFERENCES = "IEC 62443-3-3 SR 5.1, SR 5.2"
RECORD_VERSION = 1
#: Largest saved ``nft -j list ruleset`` read (a gateway's ruleset is a few hundred KB at most).
MAX_RULESET_BYTES = 16 << 20


@dataclass(frozen=True)
class RulesetAnalysis:
    """What the live ruleset says about the conduits (all tuples sorted, names or rule descriptions)."""

    table_present: bool
    forward_policy: str | None
    conduits_present: tuple[str, ...]
    conduits_missing: tuple[str, ...]
    conduits_drifted: tuple[str, ...]
    extra_accepts: tuple[str, ...]

    @property
    def problems(self) -> tuple[str, ...]:
        """Human-readable problems; empty means the gateway enforces exactly the conduits."""
        found = []
        if not self.table_present:
            found.append(f"table {TABLE_FAMILY} {TABLE_NAME} is not loaded")
        elif self.forward_policy != "drop":
            found.append(f"forward policy is {self.forward_policy or 'missing'}, not drop")
        found += [f"conduit {name} missing" for name in self.conduits_missing]
        found += [f"conduit {name} differs from the network file" for name in self.conduits_drifted]
        found += [f"extra accept: {rule}" for rule in self.extra_accepts]
        return tuple(found)


def _parse(ruleset_json: Mapping[str, Any] | str, source: str) -> list[Mapping[str, Any]]:
    if isinstance(ruleset_json, str):
        try:
            data = parse_json(ruleset_json)
        except json.JSONDecodeError as exc:
            raise InputError(source, None, "the JSON of `nft -j list ruleset`", f"invalid JSON ({exc.msg})",
                             exc.lineno) from None
    else:
        data = ruleset_json
    items = data.get("nftables") if isinstance(data, Mapping) else None
    if not isinstance(items, list):
        raise InputError(source, "nftables", "the JSON of `nft -j list ruleset` (an 'nftables' list)",
                         type(data).__name__)
    return [item for item in items if isinstance(item, Mapping)]


def _addresses(right: Any) -> frozenset[str]:
    values: Any = right.get("set") if isinstance(right, Mapping) and "set" in right else [right]
    result = set()
    for value in values:
        if isinstance(value, Mapping) and "prefix" in value:
            prefix = value["prefix"]
            result.add(str(ipaddress.ip_network(f"{prefix['addr']}/{prefix['len']}", strict=False)))
        elif isinstance(value, Mapping) and "range" in value:
            result.add("-".join(str(v) for v in value["range"]))
        else:
            result.add(str(ipaddress.ip_network(str(value), strict=False)))
    return frozenset(result)


def _ports(right: Any) -> frozenset[int]:
    values: Any = right.get("set") if isinstance(right, Mapping) and "set" in right else [right]
    result: set[int] = set()
    for value in values:
        if isinstance(value, Mapping) and "range" in value:
            low, high = value["range"]
            result.update(range(int(low), int(high) + 1))
        else:
            result.add(int(value))
    return frozenset(result)


def _rule_shape(expr: list[Any]) -> dict[str, Any]:
    """The parts of a rule this check compares: protocol, ports, addresses, interfaces, verdict."""
    shape: dict[str, Any] = {"verdict": None, "ct_state": None}
    for item in expr:
        if not isinstance(item, Mapping):
            continue
        for verdict in ("accept", "drop", "reject", "jump", "goto"):
            if verdict in item:
                shape["verdict"] = verdict
        match = item.get("match")
        if not isinstance(match, Mapping):
            continue
        left: Any = match.get("left")
        right: Any = match.get("right")
        if isinstance(left, Mapping) and "payload" in left:
            payload = left["payload"]
            if payload.get("field") == "dport":
                shape["protocol"] = payload.get("protocol")
                shape["ports"] = _ports(right)
            elif payload.get("field") in ("saddr", "daddr") and payload.get("protocol") == "ip":
                shape[payload["field"]] = _addresses(right)
        elif isinstance(left, Mapping) and "meta" in left and left["meta"].get("key") in ("iifname", "oifname"):
            shape[left["meta"]["key"]] = right
        elif isinstance(left, Mapping) and "ct" in left and left["ct"].get("key") == "state":
            shape["ct_state"] = frozenset([right] if isinstance(right, str) else right)
    return shape


def _expected_shape(network: NetworkPolicy) -> dict[str, dict[str, Any]]:
    expected = {}
    for conduit in network.conduits:
        source, target = network.zone(conduit.from_zone), network.zone(conduit.to_zone)
        assert source is not None and target is not None  # guaranteed by the loader
        expected[conduit_comment(conduit)] = {
            "protocol": conduit.protocol.value,
            "ports": frozenset(network.conduit_ports(conduit)),
            "saddr": _addresses({"set": list(network.endpoint_addresses(conduit, to_side=False))}),
            "daddr": _addresses({"set": list(network.endpoint_addresses(conduit, to_side=True))}),
            "iifname": source.gateway_interface,
            "oifname": target.gateway_interface,
        }
    return expected


def analyse_ruleset(network: NetworkPolicy, ruleset_json: Mapping[str, Any] | str,
                    source: str = "ruleset") -> RulesetAnalysis:
    """Compare the ``nft -j list ruleset`` output with the network's conduits.

    :raises InputError: when ``ruleset_json`` is not nft's JSON.
    """
    items = _parse(ruleset_json, source)
    ours = (TABLE_FAMILY, TABLE_NAME)
    table_present = any(
        "table" in i and (i["table"].get("family"), i["table"].get("name")) == ours for i in items)
    policy = None
    for item in items:
        chain = item.get("chain")
        if isinstance(chain, Mapping) and (chain.get("family"), chain.get("table")) == ours \
                and chain.get("name") == CHAIN_NAME and chain.get("hook") == "forward":
            policy = chain.get("policy")
    expected = _expected_shape(network)
    present: set[str] = set()
    drifted: set[str] = set()
    extra: list[str] = []
    for item in items:
        rule = item.get("rule")
        if not isinstance(rule, Mapping) or (rule.get("family"), rule.get("table")) != ours \
                or rule.get("chain") != CHAIN_NAME:
            continue
        shape = _rule_shape(rule.get("expr") or [])
        if shape["verdict"] not in ("accept", "jump", "goto"):
            continue
        comment = rule.get("comment")
        if shape["verdict"] == "accept" and comment is None \
                and shape["ct_state"] is not None and shape["ct_state"] <= {"established", "related"} \
                and len(shape) == 2:
            continue  # the stateful baseline: replies of allowed flows
        if comment in expected:
            present.add(comment)
            want = expected[comment]
            if shape["verdict"] != "accept" or any(shape.get(k) != v for k, v in want.items()) \
                    or shape["ct_state"] not in (None, frozenset({"new"})):
                drifted.add(comment)
            continue
        extra.append(f"handle {rule.get('handle')}" + (f" comment {comment!r}" if comment else "")
                     + f" ({shape['verdict']})")
    strip = len("conduit:")
    return RulesetAnalysis(
        table_present=table_present,
        forward_policy=policy,
        conduits_present=tuple(sorted(c[strip:] for c in present)),
        conduits_missing=tuple(sorted(c[strip:] for c in expected if c not in present)),
        conduits_drifted=tuple(sorted(c[strip:] for c in drifted)),
        extra_accepts=tuple(extra),
    )


def check_ruleset(network: NetworkPolicy, ruleset_json: Mapping[str, Any] | str,
                  evidence: str = "nft -j list ruleset") -> list[Finding]:
    """The ``network_ruleset`` finding about the gateway: OK when the ruleset enforces exactly the
    conduits with a drop policy, ERROR naming every problem otherwise.

    :raises InputError: when ``ruleset_json`` is not nft's JSON.
    """
    analysis = analyse_ruleset(network, ruleset_json, evidence)
    problems = analysis.problems
    values = (
        ("evidence", evidence),
        ("references", REFERENCES),
        ("forward_policy", analysis.forward_policy or "missing"),
        ("conduits_expected", str(len(network.conduits))),
        ("conduits_present", ",".join(analysis.conduits_present)),
        ("conduits_missing", ",".join(analysis.conduits_missing)),
        ("conduits_drifted", ",".join(analysis.conduits_drifted)),
        ("extra_accepts", "; ".join(analysis.extra_accepts)),
    )
    if problems:
        message = "gateway ruleset does not match the conduits: " + "; ".join(problems)
        return [Finding(NETWORK_RULESET, GATEWAY_SUBJECT, Level.ERROR, message, values)]
    message = f"gateway enforces the {len(network.conduits)} conduits of {network.name} with policy drop"
    return [Finding(NETWORK_RULESET, GATEWAY_SUBJECT, Level.OK, message, values)]


def read_ruleset_file(path: Path) -> str:
    """The JSON text of an ``nft -j list ruleset`` dump saved in ``path`` (at most 16 MiB, UTF-8).

    :raises InputError: when the file cannot be read, is too big or is not UTF-8.
    """
    return read_input_text(path, "saved nft JSON ruleset", MAX_RULESET_BYTES)


def read_live_ruleset(netns: str | None = None, timeout_s: float = 10.0) -> str:
    """The JSON text of ``nft -j list ruleset`` on this host or inside network namespace ``netns``.

    :raises CobotSecurityError: when nft cannot be run or fails (e.g. not root).
    """
    command = ["nft", "-j", "list", "ruleset"]
    if netns is not None:
        command = ["ip", "netns", "exec", netns, *command]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CobotSecurityError(f"cannot run {' '.join(command)}: {exc}") from exc
    if done.returncode != 0:
        raise CobotSecurityError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()[:200]}")
    return done.stdout


@dataclass(frozen=True)
class NetworkCheckRecord:
    """The findings of one ``network check`` and when it ran (UTC)."""

    checked_at: _dt.datetime
    findings: tuple[Finding, ...]


def record_network_check(path: Path, findings: list[Finding] | tuple[Finding, ...], now: _dt.datetime) -> None:
    """Store ``findings`` with their time ``now`` as JSON at ``path`` (atomically, 0644, dirs created 0700).

    :raises OSError: when the file cannot be written.
    """
    document = {
        "version": RECORD_VERSION,
        "checked_at": iso_utc(now),
        "findings": [finding_to_json(f) for f in findings],
    }
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_bytes_atomic(path, (json.dumps(document, indent=2, sort_keys=True) + "\n").encode(), 0o644)


def read_network_check(path: Path) -> NetworkCheckRecord:
    """The record written by :func:`record_network_check`.

    :raises InputError: when the file is missing, unreadable or not such a record.
    """
    try:
        data = parse_json(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(path, None, "a network check record (run `cobot-security network check`)",
                         exc.strerror or type(exc).__name__) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(path, None, "a JSON network check record", str(exc)) from None
    try:
        if data["version"] != RECORD_VERSION:
            raise InputError(path, "version", f"version {RECORD_VERSION}", repr(data["version"]))
        checked_at = _dt.datetime.fromisoformat(data["checked_at"])
        if checked_at.tzinfo is None:
            raise InputError(path, "checked_at", "a UTC time with offset", data["checked_at"])
        if not isinstance(data["findings"], list):
            raise InputError(path, "findings", "a list of findings", type(data["findings"]).__name__)
        findings = tuple(finding_from_json(f, str(path), f"findings[{i}]") for i, f in enumerate(data["findings"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(path, None, "a network check record (version, checked_at, findings)",
                         f"{type(exc).__name__}: {exc}") from None
    return NetworkCheckRecord(checked_at, findings)
