"""What a launch file needs to start a node in its enclave, decided without importing launch.

Pure logic for :mod:`cobot_security.launch_helpers` and the package's launch files: find a node's
enclave in the workcell policy, build its ``--ros-args --enclave`` arguments and ``ROS_SECURITY_*``
environment, derive the demo nodes' topics from the policy, and plan a rolling restart after a
certificate rotation.  Everything here is testable without ``launch`` installed; nothing here
reads the environment or the clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cobot_security.errors import InputError
from cobot_security.names import NameContext, validate_namespace, validate_node_name
from cobot_security.policy.model import NodeGrants, WorkcellPolicy
from cobot_security.resources import default_keystore, shipped_file
from cobot_security.status import parse_status_name

__all__ = [
    "ENV_ENABLE",
    "ENV_KEYSTORE",
    "ENV_STRATEGY",
    "RESTART_CHECK",
    "STACK_NODES",
    "STACK_TOPIC_PREFIXES",
    "UNSAFE_WARNING",
    "DemoNodeEntry",
    "NodeNotInPolicyError",
    "RestartRequest",
    "SecuredNodeSpec",
    "demo_node_entries",
    "is_stack_topic",
    "node_fqn",
    "parse_launch_bool",
    "plan_rolling_restart",
    "restart_requests",
    "restart_targets",
    "secure_node_spec",
    "security_environment",
    "stack_defaults",
]

ENV_ENABLE = "ROS_SECURITY_ENABLE"
ENV_STRATEGY = "ROS_SECURITY_STRATEGY"
ENV_KEYSTORE = "ROS_SECURITY_KEYSTORE"
#: Health check name keystore_manager uses after rotating an enclave's certificate:
#: status ``cobot_security/restart_required/<enclave>`` on /cobot_security/health.
RESTART_CHECK = "restart_required"
#: The package's own nodes (started by security_stack.launch.py) → their enclave in the policy.
STACK_NODES: Mapping[str, str] = {
    "/health_reporter": "/cobot_security/health_reporter",
    "/supervisor": "/cobot_security/supervisor",
    "/keystore_manager": "/cobot_security/keystore_manager",
}
#: Topics the stack carries as diagnostic_msgs/DiagnosticArray; demo nodes use that type on them
#: (and never publish there), std_msgs/String everywhere else.
STACK_TOPIC_PREFIXES: tuple[str, ...] = ("/cobot_security/", "/diagnostics")
#: Warning carried by every spec built with ``unsafe_no_security=True``.
UNSAFE_WARNING = (
    "unsafe_no_security: {fqn} runs WITHOUT DDS Security (ROS_SECURITY_ENABLE not set); "
    "its enclave {enclave} is passed but not enforced - for demos on an rmw without DDS Security only"
)


class NodeNotInPolicyError(InputError):
    """A launch file asked for a node the workcell policy gives no enclave (exit 2)."""

    def __init__(self, fqn: str, policy_source: str | Path) -> None:
        self.node = fqn
        super().__init__(policy_source, "enclaves", f"an enclave for node {fqn}")

    def _render(self) -> str:
        return (f"node {self.node} has no enclave in policy {self.file}: "
                "add it under enclaves: (see docs/policy.md)")


@dataclass(frozen=True)
class SecuredNodeSpec:
    """Everything a launch action needs to start one node in its enclave."""

    package: str
    executable: str
    name: str
    namespace: str
    enclave: str
    arguments: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    warning: str | None = None


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


@dataclass(frozen=True)
class RestartRequest:
    """A rotated enclave whose processes must restart to load the new certificate.

    ``token`` tells one rotation from the next (the new ``not_after``, else the status message),
    so that a status republished every period restarts a node once, not on every message.
    """

    enclave: str
    token: str


def node_fqn(name: str, namespace: str = "/") -> str:
    """``/cell`` + ``arm_driver`` → ``/cell/arm_driver``, after checking both names.

    :raises InvalidNameError: the node name or namespace breaks the ROS naming rules.
    """
    validate_node_name(name, NameContext(field="name"))
    validate_namespace(namespace, NameContext(field="namespace"))
    return namespace.rstrip("/") + "/" + name


def security_environment(keystore: Path, *, unsafe_no_security: bool = False) -> dict[str, str]:
    """The ``ROS_SECURITY_*`` variables for nodes using ``keystore`` (Enforce: no silent fallback).

    With ``unsafe_no_security`` only the keystore is named, so rmw starts unsecured.
    """
    if unsafe_no_security:
        return {ENV_KEYSTORE: str(keystore)}
    return {ENV_ENABLE: "true", ENV_STRATEGY: "Enforce", ENV_KEYSTORE: str(keystore)}


def _find_node(policy: WorkcellPolicy, fqn: str) -> tuple[str, NodeGrants] | None:
    for enclave in policy.enclaves:
        for node in enclave.nodes:
            if node.fqn == fqn:
                return enclave.path, node
    return None


def secure_node_spec(
    policy: WorkcellPolicy,
    keystore: Path,
    package: str,
    executable: str,
    name: str,
    namespace: str = "/",
    *,
    policy_source: str | Path,
    unsafe_no_security: bool = False,
) -> SecuredNodeSpec:
    """The enclave arguments and environment of node ``<namespace>/<name>`` under ``policy``.

    ``unsafe_no_security`` keeps the ``--enclave`` argument but leaves DDS Security off, and says
    so in :attr:`SecuredNodeSpec.warning` (for the PyPI-wheel demo, whose Fast DDS has no DDS
    Security).

    :raises NodeNotInPolicyError: no enclave of the policy names this node (an InputError).
    :raises InvalidNameError: ``name`` or ``namespace`` is not a valid ROS name.
    """
    fqn = node_fqn(name, namespace)
    found = _find_node(policy, fqn)
    if found is None:
        raise NodeNotInPolicyError(fqn, policy_source)
    enclave, _grants = found
    warning = UNSAFE_WARNING.format(fqn=fqn, enclave=enclave) if unsafe_no_security else None
    return SecuredNodeSpec(
        package=package,
        executable=executable,
        name=name,
        namespace=namespace,
        enclave=enclave,
        arguments=("--ros-args", "--enclave", enclave),
        env=security_environment(keystore, unsafe_no_security=unsafe_no_security),
        warning=warning,
    )


def is_stack_topic(topic: str) -> bool:
    """Whether an absolute topic is one of the stack's DiagnosticArray topics (:data:`STACK_TOPIC_PREFIXES`)."""
    return any(topic == p.rstrip("/") or (p.endswith("/") and topic.startswith(p)) for p in STACK_TOPIC_PREFIXES)


def _resolved(node: NodeGrants, names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(node.resolve(name) for name in names)


def demo_node_entries(policy: WorkcellPolicy) -> list[DemoNodeEntry]:
    """Every policy node except the package's own (:data:`STACK_NODES`), in policy order.

    Names are resolved to absolute names; the demo node creates exactly these endpoints (its
    topics typed as :func:`is_stack_topic` says), so the running cell uses every grant of its
    policy entry and nothing else.
    """
    entries = []
    for enclave in policy.enclaves:
        for node in enclave.nodes:
            if node.fqn in STACK_NODES:
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


def stack_defaults(environ: Mapping[str, str]) -> dict[str, str]:
    """Default launch arguments of security_stack.launch.py (the DESIGN.md parameter defaults)."""
    return {
        "keystore": str(default_keystore(environ)),
        "policy": str(shipped_file("policies/workcell.yaml")),
        "controls": str(shipped_file("policies/posture_controls.yaml")),
        "attestations": str(shipped_file("policies/attestations.yaml")),
        "domain_id": environ.get("ROS_DOMAIN_ID", "0") or "0",
        "period_s": "1.0",
        "stale_after_s": "3.0",
    }


def parse_launch_bool(text: str, field_name: str) -> bool:
    """A launch argument's ``true``/``false`` (any case, also 1/0, yes/no) as a bool.

    :raises InputError: anything else, naming the argument.
    """
    lowered = text.strip().lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise InputError(None, field_name, "true or false", repr(text))


def restart_targets(policy: WorkcellPolicy, rotated_enclaves: Iterable[str]) -> list[str]:
    """Node FQNs to restart, one at a time, after ``rotated_enclaves`` got new certificates.

    In policy order, each node once; an enclave the policy does not name restarts nothing
    (keystore_manager reports such enclaves separately).
    """
    rotated = set(rotated_enclaves)
    return [node.fqn for enclave in policy.enclaves if enclave.path in rotated for node in enclave.nodes]


def restart_requests(statuses: Iterable[tuple[str, Mapping[str, str], str]]) -> list[RestartRequest]:
    """The restart requests among ``(status name, key/values, message)`` of one health message."""
    requests = []
    for name, values, message in statuses:
        parsed = parse_status_name(name)
        if parsed is None or parsed[0] != RESTART_CHECK:
            continue
        requests.append(RestartRequest(enclave=parsed[1],
                                       token=values.get("rotated_at") or values.get("not_after") or message))
    return requests


def plan_rolling_restart(
    policy: WorkcellPolicy,
    requests: Iterable[RestartRequest],
    running: Iterable[str],
    handled: Iterable[RestartRequest],
) -> list[str]:
    """Running node FQNs to restart for the requests not ``handled`` yet, in restart order.

    Nodes this launch did not start (not in ``running``) are left alone; a request already in
    ``handled`` (same enclave, same rotation token) restarts nothing again.
    """
    done = set(handled)
    new = [request.enclave for request in requests if request not in done]
    started = set(running)
    return [fqn for fqn in restart_targets(policy, new) if fqn in started]
