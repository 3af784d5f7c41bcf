"""Which nodes the package's launch files start: the security stack and one demo node per cell node.

Pure: derived from the workcell policy, testable without launch or rclpy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from cobot_security.launch_plan.node_spec import node_fqn
from cobot_security.policy.model import NodeGrants, WorkcellPolicy

__all__ = [
    "LAUNCH_LISTENER",
    "STACK_NODES",
    "STACK_TOPIC_PREFIXES",
    "DemoNodeEntry",
    "demo_node_entries",
    "is_stack_topic",
]

#: The package's own nodes (started by security_stack.launch.py) → their enclave in the policy.
STACK_NODES: Mapping[str, str] = {
    "/health_reporter": "/cobot_security/health_reporter",
    "/supervisor": "/cobot_security/supervisor",
    "/keystore_manager": "/cobot_security/keystore_manager",
}
#: The rolling restart's listener inside the launch process: a declared participant of the cell,
#: never an unknown node (node FQN → enclave; policies/workcell.yaml grants it the health topic).
LAUNCH_LISTENER: Mapping[str, str] = {"/launch_listener": "/cobot_security/launch_listener"}
#: Topics the stack carries as diagnostic_msgs/DiagnosticArray; demo nodes use that type on them
#: (and never publish there), std_msgs/String everywhere else.
STACK_TOPIC_PREFIXES: tuple[str, ...] = ("/cobot_security/", "/diagnostics")


@dataclass(frozen=True)
class DemoNodeEntry:
    """One node of the example cell as the generic ``demo_node`` runs it (topics already resolved)."""

    name: str
    namespace: str
    enclave: str
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    services_serve: tuple[str, ...] = ()
    services_call: tuple[str, ...] = ()
    actions_serve: tuple[str, ...] = ()
    actions_call: tuple[str, ...] = ()

    def parameters(self) -> dict[str, list[str]]:
        """The demo_node parameters of this entry (empty lists left out: they have no type on the command line)."""
        values = {"publish": self.publish, "subscribe": self.subscribe, "serve": self.services_serve,
                  "call": self.services_call, "action_serve": self.actions_serve, "action_call": self.actions_call}
        return {key: list(names) for key, names in values.items() if names}

    @property
    def fqn(self) -> str:
        """Fully qualified node name."""
        return node_fqn(self.name, self.namespace)


def is_stack_topic(topic: str) -> bool:
    """Whether an absolute topic is one of the stack's DiagnosticArray topics (:data:`STACK_TOPIC_PREFIXES`)."""
    return any(topic == p.rstrip("/") or (p.endswith("/") and topic.startswith(p)) for p in STACK_TOPIC_PREFIXES)


def _resolved(node: NodeGrants, names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(node.resolve(name) for name in names)


def demo_node_entries(policy: WorkcellPolicy) -> list[DemoNodeEntry]:
    """Every policy node except the package's own (:data:`STACK_NODES`, :data:`LAUNCH_LISTENER`), in policy order.

    Names are resolved to absolute names; the demo node creates exactly these endpoints (its
    topics typed as :func:`is_stack_topic` says), so the running cell uses every grant of its
    policy entry and nothing else.
    """
    entries = []
    for enclave in policy.enclaves:
        for node in enclave.nodes:
            if node.fqn in STACK_NODES or node.fqn in LAUNCH_LISTENER:
                continue
            entries.append(DemoNodeEntry(
                name=node.name,
                namespace=node.namespace,
                enclave=enclave.path,
                publish=_resolved(node, node.publish),
                subscribe=_resolved(node, node.subscribe),
                services_serve=_resolved(node, node.services_serve),
                services_call=_resolved(node, node.services_call),
                actions_serve=_resolved(node, node.actions_serve),
                actions_call=_resolved(node, node.actions_call),
            ))
    return entries
