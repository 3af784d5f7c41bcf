"""Which subjects a reporter may report: its own enclave and nodes, or, for a host reporter, its host's.

The rule (docs/health.md, "Ownership") in one pure function, :func:`owned_subjects`:

* a **node reporter** (any enclave) owns findings whose subject is its enclave path or the fully
  qualified name of a node the policy lists in that enclave, and whose ``enclave`` value (when
  present) is its enclave;
* a **host reporter** (an enclave whose policy entry runs ``health_reporter`` or
  ``keystore_manager``, the stack's reporting nodes) owns every subject except the enclaves, their
  nodes and the hosts that the policy places on *other* hosts only.  A policy without hosts is one
  host: the host reporter owns every subject;
* nobody owns the checks the supervisor makes itself (reporter_liveness, incident_plan) or the
  signature statuses.

Hosts plug in at :func:`policy_host_assignment`, the only place that reads host assignments from
the policy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from cobot_security import checks
from cobot_security.health.envelope import SIGNATURE_CHECK
from cobot_security.policy.model import WorkcellPolicy
from cobot_security.status import Finding

__all__ = ["HOST_REPORTER_NODES", "HostAssignment", "is_host_reporter", "owned_subjects", "policy_host_assignment"]

#: Base names of the package's nodes that report for their whole host (DESIGN.md executables).
HOST_REPORTER_NODES = frozenset({"health_reporter", "keystore_manager"})
#: Checks only the supervisor makes, and the message signature itself: never accepted from the wire.
SUPERVISOR_CHECKS = frozenset({checks.REPORTER_LIVENESS, checks.INCIDENT_PLAN, SIGNATURE_CHECK})


@dataclass(frozen=True)
class HostAssignment:
    """The policy's hosts and, per enclave path, the hosts that run it."""

    hosts: frozenset[str]
    enclave_hosts: Mapping[str, frozenset[str]]


def policy_host_assignment(policy: WorkcellPolicy) -> HostAssignment | None:
    """The hosts of ``policy`` and the hosts each enclave runs on; None for a single-host cell (no ``hosts:``)."""
    if not policy.hosts:
        return None
    return HostAssignment(frozenset(host.name for host in policy.hosts),
                          {enclave.path: frozenset(enclave.hosts) for enclave in policy.enclaves})


def is_host_reporter(policy: WorkcellPolicy | None, enclave: str) -> bool:
    """True when the policy entry of ``enclave`` runs one of :data:`HOST_REPORTER_NODES`."""
    entry = policy.enclave(enclave) if policy is not None else None
    return entry is not None and any(node.name in HOST_REPORTER_NODES for node in entry.nodes)


def _node_owner(policy: WorkcellPolicy) -> dict[str, str]:
    return {node.fqn: enclave.path for enclave in policy.enclaves for node in enclave.nodes}


def _nothing(_finding: Finding) -> bool:
    return False


def owned_subjects(policy: WorkcellPolicy | None, reporter_enclave: str, host: str,
                   assignment: HostAssignment | None = None) -> Callable[[Finding], bool]:
    """A predicate: may the reporter ``reporter_enclave`` on ``host`` report ``finding``?

    ``assignment`` defaults to :func:`policy_host_assignment` of ``policy`` (None: one host).
    Without a policy only the node rule applies (own enclave), so host-wide findings are refused.
    A reporter claiming a host its enclave is not assigned to owns nothing.
    """
    entry = policy.enclave(reporter_enclave) if policy is not None else None
    own_nodes = frozenset(node.fqn for node in entry.nodes) if entry is not None else frozenset()
    if assignment is None and policy is not None:
        assignment = policy_host_assignment(policy)
    if assignment is not None and host not in assignment.enclave_hosts.get(reporter_enclave, frozenset({host})):
        return _nothing
    if policy is None or not is_host_reporter(policy, reporter_enclave):
        mine = own_nodes | {reporter_enclave}

        def owns_own(finding: Finding) -> bool:
            enclave = finding.value("enclave")
            return (finding.check not in SUPERVISOR_CHECKS and finding.subject in mine
                    and (enclave is None or enclave == reporter_enclave))
        return owns_own
    if assignment is None:
        return lambda finding: finding.check not in SUPERVISOR_CHECKS
    node_owner = _node_owner(policy)
    other_hosts = {"/" + h for h in assignment.hosts if h != host}

    def elsewhere(subject: str) -> bool:
        enclave = node_owner.get(subject, subject)
        hosts = assignment.enclave_hosts.get(enclave)
        return subject in other_hosts or (hosts is not None and host not in hosts)

    def owns_host(finding: Finding) -> bool:
        subjects = [finding.subject] + [v for v in (finding.value("enclave"),) if v is not None]
        return finding.check not in SUPERVISOR_CHECKS and not any(elsewhere(s) for s in subjects)
    return owns_host
