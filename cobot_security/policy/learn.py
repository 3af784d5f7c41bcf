"""Observations of a running cell → a least-privilege workcell policy, and the grants nobody used.

:func:`learn_policy` turns an :class:`ObservationLog` into the policy model: one enclave per node
(or one per enclave the nodes reported), every observed endpoint written relative to the node
where its namespace allows (``~/status``, ``joint_states``), builtins on, no wildcards.
:func:`unused_grants` compares any policy with a learned one and lists, as lint findings, what the
policy grants but was never observed — a review item, never removed silently.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase

from cobot_security.clock import iso_utc
from cobot_security.names import resolve_name
from cobot_security.policy.lint import WARNING, LintFinding, grant_field_name
from cobot_security.policy.model import Enclave, GovernanceOptions, Lifetimes, NodeGrants, WorkcellPolicy
from cobot_security.policy.observation import ENDPOINT_FIELDS, ObservationLog, ObservedNode

#: How learned nodes are grouped into enclaves.
GROUP_BY_NODE = "node"
GROUP_BY_REPORTED = "reported"
GROUPINGS: tuple[str, ...] = (GROUP_BY_NODE, GROUP_BY_REPORTED)


@dataclass(frozen=True)
class LearnOptions:
    """Facts the learned policy needs that the graph cannot tell: its name, domains, grouping."""

    name: str
    domain_ids: tuple[int, ...]
    group_by: str = GROUP_BY_NODE


def relative_name(name: str, node: str, namespace: str) -> str:
    """The shortest policy spelling of absolute ``name`` for the node: ``~/x``, ``x`` or ``/x``.

    Names of a root-namespace node stay absolute except its private ones: ``/diagnostics`` reads
    better than ``diagnostics`` and resolves the same.
    """
    fqn = resolve_name(node, node, namespace)
    if name.startswith(fqn + "/"):
        return "~/" + name[len(fqn) + 1:]
    if namespace != "/" and name.startswith(namespace + "/"):
        return name[len(namespace) + 1:]
    return name


def node_grants_of(name: str, namespace: str, fields: Mapping[str, Iterable[str]]) -> NodeGrants:
    """A NodeGrants from absolute names per grant field, written relative to the node and sorted."""
    def written(kind: str) -> tuple[str, ...]:
        return tuple(sorted(relative_name(n, name, namespace) for n in fields.get(kind, ())))

    return NodeGrants(name=name, namespace=namespace, publish=written("publish"), subscribe=written("subscribe"),
                      services_serve=written("services_serve"), services_call=written("services_call"),
                      actions_serve=written("actions_serve"), actions_call=written("actions_call"))


def _node_grants(node: ObservedNode) -> NodeGrants:
    return node_grants_of(node.name, node.namespace, node.endpoints)


def _nests(a: str, b: str) -> bool:
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


def free_enclave_path(path: str, taken: set[str]) -> str:
    """``path`` if it neither equals nor nests with a taken enclave path, else ``path`` with its
    first token suffixed (``/cell/x`` → ``/cell_1/x``), which leaves every ``/cell/...`` path."""
    if not any(_nests(path, other) for other in taken):
        return path
    first, _, rest = path[1:].partition("/")
    index = 1
    while True:
        candidate = f"/{first}_{index}" + (f"/{rest}" if rest else "")
        if not any(_nests(candidate, other) for other in taken):
            return candidate
        index += 1


def _enclave_paths(nodes: list[ObservedNode], group_by: str) -> dict[str, str]:
    """Node FQN → enclave path.  Enclave directories cannot nest, so a path that is the parent of
    another (node ``/cell`` beside ``/cell/arm``) is renamed (``/cell_1``)."""
    wanted = {n.fqn: (n.enclave if group_by == GROUP_BY_REPORTED and n.enclave != "/" else n.fqn) for n in nodes}
    paths = set(wanted.values())
    renamed: dict[str, str] = {}
    for path in sorted(paths):
        if any(other.startswith(path + "/") for other in paths):
            renamed[path] = free_enclave_path(path, paths | set(renamed.values()))
        else:
            renamed[path] = path
    return {fqn: renamed[path] for fqn, path in wanted.items()}


def learn_policy(log: ObservationLog, options: LearnOptions) -> WorkcellPolicy:
    """The least-privilege policy of what ``log`` saw (secure governance and default lifetimes).

    :raises ValueError: when nothing was observed (a policy needs at least one enclave).
    """
    nodes = sorted(log.nodes.values(), key=lambda n: n.fqn)
    if not nodes:
        raise ValueError("no node was observed")
    paths = _enclave_paths(nodes, options.group_by)
    grouped: dict[str, list[NodeGrants]] = {}
    for node in nodes:
        grouped.setdefault(paths[node.fqn], []).append(_node_grants(node))
    enclaves = tuple(Enclave(path=path, nodes=tuple(grouped[path])) for path in sorted(grouped))
    return WorkcellPolicy(version=1, name=options.name, domain_ids=options.domain_ids,
                          governance=GovernanceOptions(), lifetimes=Lifetimes(), enclaves=enclaves)


def learned_header(log: ObservationLog, options: LearnOptions, ended_at: _dt.datetime) -> str:
    """The comment block of a learned policy: when, how long, on which domain, what it holds."""
    started_at = ended_at - _dt.timedelta(seconds=log.duration_s)
    lines = [
        f"Learned by `cobot-security policy learn` on domain(s) {', '.join(map(str, options.domain_ids))}",
        f"from {iso_utc(started_at)} to {iso_utc(ended_at)} ({log.duration_s:.1f} s, {log.samples} graph samples):",
        f"{len(log.nodes)} node(s), {log.endpoint_count()} endpoint(s), enclaves by {options.group_by}.",
        "Builtins (rosout, parameter events and services) are granted by `builtins: true`.",
    ]
    if log.hidden_nodes:
        lines.append(f"Hidden nodes left out: {', '.join(sorted(log.hidden_nodes))}.")
    if log.dropped:
        lines.append(f"{log.dropped} invalid name(s) reported by the graph were dropped.")
    lines.append("Only what was observed is granted: review with `cobot-security policy diff` before signing.")
    return "\n".join(lines)


def _matches(granted: str, observed: str) -> bool:
    return granted == observed or fnmatchcase(observed, granted)


def _observed_nodes(observed: WorkcellPolicy) -> dict[str, NodeGrants]:
    return {node.fqn: node for enclave in observed.enclaves for node in enclave.nodes}


def covers(node: NodeGrants, kind: str, absolute_name: str) -> bool:
    """Whether ``node``'s grants of ``kind`` (resolved, wildcards matched) include ``absolute_name``."""
    return any(_matches(node.resolve(granted), absolute_name) for granted in getattr(node, kind))


def unused_grants(policy: WorkcellPolicy, observed: WorkcellPolicy, window: str) -> list[LintFinding]:
    """What ``policy`` grants that ``observed`` (a learned policy) never used, as warnings.

    A node that was not observed at all gives one finding for all its grants.  ``window`` says how
    long was observed (e.g. ``"30 s"``) for the message.
    """
    seen = _observed_nodes(observed)
    findings = []
    for enclave in policy.enclaves:
        for index, node in enumerate(enclave.nodes):
            prefix = "" if len(enclave.nodes) == 1 else f"nodes[{index}]."
            other = seen.get(node.fqn)
            if other is None:
                total = sum(len(getattr(node, kind)) for kind in ENDPOINT_FIELDS)
                findings.append(LintFinding(
                    WARNING, enclave.path, prefix + "node",
                    f"unused grant: node {node.fqn} was never observed {window}; its {total} grant(s) are unused",
                    node.line))
                continue
            for kind in ENDPOINT_FIELDS:
                used = [other.resolve(name) for name in getattr(other, kind)]
                for granted in getattr(node, kind):
                    if not any(_matches(node.resolve(granted), name) for name in used):
                        findings.append(LintFinding(
                            WARNING, enclave.path, prefix + grant_field_name(kind),
                            f"unused grant: {granted!r} of node {node.fqn} was never observed {window}",
                            node.line))
    return findings
