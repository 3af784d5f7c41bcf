"""One node in its policy enclave: the ``--enclave`` arguments and ``ROS_SECURITY_*`` environment.

Pure: finds the node in the workcell policy and computes what a launch action (or the demo's
process group) needs to start it; nothing here imports launch or reads the environment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cobot_security.errors import InputError
from cobot_security.names import NameContext, validate_namespace, validate_node_name
from cobot_security.policy.model import NodeGrants, WorkcellPolicy

__all__ = [
    "ENV_ENABLE",
    "ENV_KEYSTORE",
    "ENV_STRATEGY",
    "UNSAFE_WARNING",
    "NodeNotInPolicyError",
    "SecuredNodeSpec",
    "find_node",
    "node_fqn",
    "secure_node_spec",
    "security_environment",
]

ENV_ENABLE = "ROS_SECURITY_ENABLE"
ENV_STRATEGY = "ROS_SECURITY_STRATEGY"
ENV_KEYSTORE = "ROS_SECURITY_KEYSTORE"
#: Warning carried by every spec built with ``unsafe_no_security=True``.
UNSAFE_WARNING = (
    "unsafe_no_security: {fqn} runs WITHOUT DDS Security (ROS_SECURITY_ENABLE=false, whatever the "
    "environment says); its enclave {enclave} is passed but not enforced - for demos on an rmw "
    "without DDS Security only"
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


def node_fqn(name: str, namespace: str = "/") -> str:
    """``/cell`` + ``arm_driver`` → ``/cell/arm_driver``, after checking both names.

    :raises InvalidNameError: the node name or namespace breaks the ROS naming rules.
    """
    validate_node_name(name, NameContext(field="name"))
    validate_namespace(namespace, NameContext(field="namespace"))
    return namespace.rstrip("/") + "/" + name


def security_environment(keystore: Path, *, unsafe_no_security: bool = False) -> dict[str, str]:
    """The ``ROS_SECURITY_*`` variables for nodes using ``keystore`` (Enforce: no silent fallback).

    With ``unsafe_no_security`` security is switched off explicitly (``ROS_SECURITY_ENABLE=false``;
    rcl enables it only for ``true``), so that a ``ROS_SECURITY_ENABLE=true`` the shell exports
    cannot switch it back on for the node.
    """
    if unsafe_no_security:
        return {ENV_ENABLE: "false", ENV_KEYSTORE: str(keystore)}
    return {ENV_ENABLE: "true", ENV_STRATEGY: "Enforce", ENV_KEYSTORE: str(keystore)}


def find_node(policy: WorkcellPolicy, fqn: str) -> tuple[str, NodeGrants] | None:
    """(enclave path, node grants) of the node named ``fqn`` in ``policy``, or None."""
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

    ``unsafe_no_security`` keeps the ``--enclave`` argument but switches DDS Security off, and
    says so in :attr:`SecuredNodeSpec.warning` (for the PyPI-wheel demo, whose Fast DDS has no
    DDS Security).

    :raises NodeNotInPolicyError: no enclave of the policy names this node (an InputError).
    :raises InvalidNameError: ``name`` or ``namespace`` is not a valid ROS name.
    """
    fqn = node_fqn(name, namespace)
    found = find_node(policy, fqn)
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
