"""Policy hygiene checks: wildcards, weak governance, dangling topics/services/actions, long lifetimes.

A policy that loads is well-formed; lint says whether it is *wise*.  Findings are values, returned
in policy order and never printed: ``error`` marks a weakening of DDS Security itself (unprotected
traffic, unauthenticated participants, access control off), ``warning`` marks something an
integrator should look at (wildcards, a subscription nobody feeds, a call nobody answers, builtins
off, certificates valid longer than the 397 days browsers accept for TLS certificates).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from fnmatch import fnmatchcase

from cobot_security.names import has_wildcard
from cobot_security.policy.model import Enclave, NodeGrants, Protection, WorkcellPolicy

WARNING = "warning"
ERROR = "error"
#: Longest enclave certificate lifetime lint accepts without a warning (CA/Browser Forum limit).
MAX_ENCLAVE_DURATION = _dt.timedelta(days=397)
#: Most wildcard comparisons one dangling-name check makes (a hostile policy must not hang lint).
MAX_WILDCARD_COMPARISONS = 1_000_000

#: NodeGrants field → (dotted policy field, what a wildcard there grants)
_GRANT_MEANING: dict[str, tuple[str, str]] = {
    "publish": ("topics.publish", "publishing on every topic"),
    "subscribe": ("topics.subscribe", "subscribing to every topic"),
    "services_serve": ("services.serve", "serving every service"),
    "services_call": ("services.call", "calling every service"),
    "actions_serve": ("actions.serve", "serving every action"),
    "actions_call": ("actions.call", "calling every action"),
}


@dataclass(frozen=True)
class LintFinding:
    """One lint result; ``enclave`` is empty for cell-wide findings (governance)."""

    level: str
    enclave: str
    field: str
    message: str
    line: int | None = None


@dataclass(frozen=True)
class _Use:
    """One resolved name used by one node (for cross-enclave matching)."""

    enclave: Enclave
    node: NodeGrants
    node_index: int
    written: str
    resolved: str


def grant_field_name(grant_field: str) -> str:
    """The dotted policy field of a NodeGrants field: ``services_serve`` → ``services.serve``."""
    return _GRANT_MEANING[grant_field][0]


def _node_field(enclave: Enclave, index: int, grant_field: str) -> str:
    prefix = "" if len(enclave.nodes) == 1 else f"nodes[{index}]."
    return prefix + grant_field_name(grant_field)


def _uses(policy: WorkcellPolicy, grant_field: str) -> list[_Use]:
    return [
        _Use(enclave, node, index, name, node.resolve(name))
        for enclave in policy.enclaves
        for index, node in enumerate(enclave.nodes)
        for name in getattr(node, grant_field)
    ]


def _matches(a: str, b: str) -> bool:
    """Whether two resolved names (either may hold DDS fnmatch wildcards) can denote the same name."""
    return a == b or fnmatchcase(a, b) or fnmatchcase(b, a)


def _lint_wildcards(policy: WorkcellPolicy) -> list[LintFinding]:
    findings = []
    for grant_field, (_, meaning) in _GRANT_MEANING.items():
        for use in _uses(policy, grant_field):
            if has_wildcard(use.written):
                findings.append(
                    LintFinding(
                        WARNING,
                        use.enclave.path,
                        _node_field(use.enclave, use.node_index, grant_field),
                        f"wildcard {use.written!r} of node {use.node.fqn} grants {meaning} matching"
                        f" {use.resolved!r}; list the concrete names instead",
                        use.node.line,
                    )
                )
    return findings


def _lint_governance(policy: WorkcellPolicy) -> list[LintFinding]:
    gov = policy.governance
    findings = []
    if gov.allow_unauthenticated_participants:
        findings.append(
            LintFinding(
                ERROR,
                "",
                "governance.allow_unauthenticated_participants",
                "participants without a certificate from the cell's CA may join the domain",
            )
        )
    for name, what in (
        ("enable_join_access_control", "joining the domain"),
        ("enable_read_access_control", "reading topics"),
        ("enable_write_access_control", "writing topics"),
    ):
        if not getattr(gov, name):
            findings.append(
                LintFinding(
                    ERROR, "", f"governance.{name}", f"permissions are not checked for {what}; any participant may"
                )
            )
    for kind in ("rtps", "discovery", "liveliness", "metadata", "data"):
        level = getattr(gov, f"{kind}_protection")
        if level is Protection.NONE:
            findings.append(
                LintFinding(
                    ERROR, "", f"governance.protection.{kind}",
                    f"{kind} traffic is sent unprotected (NONE, not ENCRYPT)",
                )
            )
        elif level is Protection.SIGN:
            findings.append(
                LintFinding(
                    WARNING,
                    "",
                    f"governance.protection.{kind}",
                    f"{kind} traffic is signed but readable on the network (SIGN, not ENCRYPT)",
                )
            )
    return findings


def _lint_dangling(policy: WorkcellPolicy) -> list[LintFinding]:
    """Subscriptions nobody publishes, publications nobody reads, calls nobody serves."""
    findings = []
    checks = (
        ("subscribe", "publish", "topic {name} is subscribed but no enclave publishes it"),
        ("publish", "subscribe", "topic {name} is published but no enclave subscribes to it"),
        ("services_call", "services_serve", "service {name} is called but no enclave serves it"),
        ("actions_call", "actions_serve", "action {name} is called but no enclave serves it"),
    )
    for used_field, partner_field, text in checks:
        partners = [use.resolved for use in _uses(policy, partner_field)]
        # Concrete names are looked up in a set; only wildcards are compared one by one, so a big
        # cell without wildcards lints in linear time, and a wildcard-heavy one within a budget.
        exact = {name for name in partners if not has_wildcard(name)}
        patterns = [name for name in partners if has_wildcard(name)]
        uses = _uses(policy, used_field)
        work = sum(len(partners) if has_wildcard(use.resolved) else len(patterns) for use in uses)
        if work > MAX_WILDCARD_COMPARISONS:
            findings.append(LintFinding(
                WARNING, "", "enclaves",
                f"{used_field} names were not matched against {partner_field} names: the wildcards need {work}"
                f" comparisons, more than {MAX_WILDCARD_COMPARISONS}; list concrete names instead"))
            continue
        for use in uses:
            if has_wildcard(use.resolved):
                fed = any(_matches(use.resolved, other) for other in partners)
            else:
                fed = use.resolved in exact or any(fnmatchcase(use.resolved, other) for other in patterns)
            if not fed:
                findings.append(
                    LintFinding(
                        WARNING,
                        use.enclave.path,
                        _node_field(use.enclave, use.node_index, used_field),
                        text.format(name=use.resolved) + f" (node {use.node.fqn})",
                        use.node.line,
                    )
                )
    return findings


def _lint_enclaves(policy: WorkcellPolicy) -> list[LintFinding]:
    findings = []
    for enclave in policy.enclaves:
        if not enclave.builtins:
            findings.append(
                LintFinding(
                    WARNING,
                    enclave.path,
                    "builtins",
                    "builtins are off: rosout, parameter events, parameter services and"
                    " ros_discovery_info must then be granted explicitly or the nodes will fail",
                    enclave.line,
                )
            )
    duration = policy.lifetimes.enclave_duration
    if duration > MAX_ENCLAVE_DURATION:
        findings.append(
            LintFinding(
                WARNING,
                "",
                "certificates.enclave.duration",
                f"enclave certificates live {duration.days} days, more than {MAX_ENCLAVE_DURATION.days};"
                " a stolen key stays useful that long",
            )
        )
    return findings


def lint_policy(policy: WorkcellPolicy) -> list[LintFinding]:
    """All hygiene findings of ``policy``: governance first, then per-enclave findings in policy order."""
    return [
        *_lint_governance(policy),
        *_lint_enclaves(policy),
        *_lint_wildcards(policy),
        *_lint_dangling(policy),
    ]
