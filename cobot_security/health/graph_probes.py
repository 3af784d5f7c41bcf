"""Graph probe: running nodes in their policy enclaves, publishing granted topics only (GRAPH_CONFORMANCE)."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from cobot_security import checks
from cobot_security.names import mangle_topic, resolve_name
from cobot_security.policy.grants import compute_dds_grants
from cobot_security.policy.model import Enclave, WorkcellPolicy
from cobot_security.policy.observation import NodeSample
from cobot_security.status import Finding, Level

_BUILTIN_TOPICS = ("/rosout", "/parameter_events")


@dataclass(frozen=True)
class NodeFact:
    """A running node as the ROS graph reports it, with the enclave it was started in."""

    name: str
    namespace: str
    enclave: str

    @property
    def fqn(self) -> str:
        """Fully qualified node name."""
        return resolve_name(self.name, self.name, self.namespace or "/")


@dataclass(frozen=True)
class GraphFacts:
    """A snapshot of the ROS graph: nodes, (topic name, publishing node FQN) pairs, and per node
    every endpoint (publishers to action clients) for the policy drift probe."""

    nodes: tuple[NodeFact, ...] = ()
    publishers: tuple[tuple[str, str], ...] = ()
    endpoints: tuple[NodeSample, ...] = ()


def _policy_enclave_of(policy: WorkcellPolicy, fqn: str) -> Enclave | None:
    for enclave in policy.enclaves:
        if any(node.fqn == fqn for node in enclave.nodes):
            return enclave
    return None


def probe_graph(graph: GraphFacts, policy: WorkcellPolicy) -> list[Finding]:
    """GRAPH_CONFORMANCE per node FQN: in the policy, in its enclave, publishing only granted topics.

    Hidden nodes (name starting with ``_``, e.g. the ros2cli daemon) are skipped.  Grants may use
    wildcards (matched with fnmatch on the DDS-mangled name); ``/rosout`` and ``/parameter_events``
    are ignored when the enclave has builtins.
    """
    findings: list[Finding] = []
    for node in sorted(set(graph.nodes), key=lambda n: (n.fqn, n.enclave)):
        if node.name.startswith("_"):
            continue
        fqn = node.fqn
        values = (("enclave", node.enclave),)
        enclave = _policy_enclave_of(policy, fqn)
        if enclave is None:
            findings.append(Finding(checks.GRAPH_CONFORMANCE, fqn, Level.ERROR,
                                    f"node {fqn} is not in the policy", values))
            continue
        if node.enclave != enclave.path:
            findings.append(Finding(checks.GRAPH_CONFORMANCE, fqn, Level.ERROR,
                                    f"enclave: expected {enclave.path}, got {node.enclave or 'none'}", values))
            continue
        granted = compute_dds_grants(enclave).publish
        ungranted = sorted({
            topic for topic, publisher in graph.publishers
            if publisher == fqn
            and not (enclave.builtins and topic in _BUILTIN_TOPICS)
            and not any(fnmatch.fnmatchcase(mangle_topic(topic), grant) for grant in granted)
        })
        if ungranted:
            findings.append(Finding(checks.GRAPH_CONFORMANCE, fqn, Level.ERROR,
                                    "publishes ungranted topics: " + ", ".join(ungranted), values))
        else:
            findings.append(Finding(checks.GRAPH_CONFORMANCE, fqn, Level.OK,
                                    "in its policy enclave, publishing granted topics only", values))
    return findings
