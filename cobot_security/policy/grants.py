"""ROS-level policy → DDS-level grants: the mangled topic names an enclave may write and read.

One place computes this so that the permissions compiler, ``verify`` and the health probes agree
on exactly what an enclave is allowed to do.  Mangling follows rmw: topics ``rt/``, service
requests ``rq/<name>Request``, replies ``rr/<name>Reply``; actions expand to three services and two
topics under ``<name>/_action/``.
"""

from __future__ import annotations

from dataclasses import dataclass

from cobot_security.names import (
    ACTION_SERVICES,
    ACTION_TOPICS,
    DISCOVERY_INFO_TOPIC,
    PARAMETER_SERVICES,
    mangle_reply,
    mangle_request,
    mangle_topic,
)
from cobot_security.policy.model import Enclave, NodeGrants


@dataclass(frozen=True)
class DdsGrants:
    """DDS topic names (already mangled, may hold wildcards) an enclave may publish / subscribe."""

    publish: tuple[str, ...]
    subscribe: tuple[str, ...]


def _serve(fqn: str, pub: set[str], sub: set[str]) -> None:
    sub.add(mangle_request(fqn))
    pub.add(mangle_reply(fqn))


def _call(fqn: str, pub: set[str], sub: set[str]) -> None:
    pub.add(mangle_request(fqn))
    sub.add(mangle_reply(fqn))


def _node_grants(node: NodeGrants, builtins: bool, pub: set[str], sub: set[str]) -> None:
    pub.update(mangle_topic(node.resolve(t)) for t in node.publish)
    sub.update(mangle_topic(node.resolve(t)) for t in node.subscribe)
    for service in node.services_serve:
        _serve(node.resolve(service), pub, sub)
    for service in node.services_call:
        _call(node.resolve(service), pub, sub)
    for action in node.actions_serve:
        base = node.resolve(action)
        for service in ACTION_SERVICES:
            _serve(f"{base}/{service}", pub, sub)
        pub.update(mangle_topic(f"{base}/{topic}") for topic in ACTION_TOPICS)
    for action in node.actions_call:
        base = node.resolve(action)
        for service in ACTION_SERVICES:
            _call(f"{base}/{service}", pub, sub)
        sub.update(mangle_topic(f"{base}/{topic}") for topic in ACTION_TOPICS)
    if builtins:
        # What every rclpy node touches: rosout, parameter events and its own parameter services.
        pub.add(mangle_topic("/rosout"))
        pub.add(mangle_topic("/parameter_events"))
        sub.add(mangle_topic("/parameter_events"))
        for service in PARAMETER_SERVICES:
            _serve(f"{node.fqn}/{service}", pub, sub)


def compute_dds_grants(enclave: Enclave) -> DdsGrants:
    """The sorted, de-duplicated DDS grants of an enclave (``ros_discovery_info`` when builtins on)."""
    pub: set[str] = set()
    sub: set[str] = set()
    for node in enclave.nodes:
        _node_grants(node, enclave.builtins, pub, sub)
    if enclave.builtins:
        pub.add(DISCOVERY_INFO_TOPIC)
        sub.add(DISCOVERY_INFO_TOPIC)
    return DdsGrants(publish=tuple(sorted(pub)), subscribe=tuple(sorted(sub)))
