"""The rclpy side of ``policy learn``: join a domain as a hidden observer and sample the live graph.

Each sample lists the nodes with their namespaces and reported enclaves, and per node its
publishers, subscribers, service servers and clients, action servers and clients, exactly as rmw's
graph cache reports them (no spinning is needed: discovery fills the cache on rmw's threads).
:class:`ObservationLog` (core) merges the samples.  The observer's own node is hidden (its name
starts with ``_``), starts no parameter services and no rosout, and is excluded from the log.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import rclpy
from rclpy.action import get_action_client_names_and_types_by_node, get_action_server_names_and_types_by_node
from rclpy.node import Node

from cobot_security.policy.observation import NodeSample, ObservationLog

#: What a progress callback gets: the log so far and the seconds elapsed.
Progress = Callable[[ObservationLog, float], None]


def _names(pairs: list[tuple[str, list[str]]]) -> tuple[str, ...]:
    return tuple(name for name, _types in pairs)


def sample_node(observer: Node, name: str, namespace: str, enclave: str) -> NodeSample | None:
    """Every endpoint of one node, or None when it left the graph between listing and query."""
    try:
        return NodeSample(
            name=name, namespace=namespace, enclave=enclave,
            publish=_names(observer.get_publisher_names_and_types_by_node(name, namespace)),
            subscribe=_names(observer.get_subscriber_names_and_types_by_node(name, namespace)),
            services_serve=_names(observer.get_service_names_and_types_by_node(name, namespace)),
            services_call=_names(observer.get_client_names_and_types_by_node(name, namespace)),
            actions_serve=_names(get_action_server_names_and_types_by_node(observer, name, namespace)),
            actions_call=_names(get_action_client_names_and_types_by_node(observer, name, namespace)),
        )
    except Exception:  # noqa: BLE001 - rclpy raises its non-public NodeNameNonExistentError for a node that left
        return None


class GraphObserver:
    """A hidden rclpy node in its own context on ``domain_id``; :meth:`close` leaves the domain."""

    def __init__(self, domain_id: int) -> None:
        self.context = rclpy.Context()
        rclpy.init(args=[], context=self.context, domain_id=domain_id)
        self.node = Node(f"_cobot_security_learn_{os.getpid()}", context=self.context,
                         start_parameter_services=False, enable_rosout=False)

    @property
    def fqn(self) -> str:
        """The observer's own fully qualified name (excluded from what it learns)."""
        return self.node.get_fully_qualified_name()

    def sample(self) -> list[NodeSample]:
        """One snapshot of the graph: every node still present with its endpoints."""
        samples = []
        for name, namespace, enclave in self.node.get_node_names_and_namespaces_with_enclaves():
            sample = sample_node(self.node, name, namespace, enclave)
            if sample is not None:
                samples.append(sample)
        return samples

    def close(self) -> None:
        """Destroy the node and shut the context down."""
        self.node.destroy_node()
        self.context.try_shutdown()


def observe_graph(domain_id: int, duration_s: float, period_s: float, progress: Progress | None = None,
                  progress_every_s: float = 1.0) -> ObservationLog:
    """Sample the graph of ``domain_id`` every ``period_s`` for ``duration_s`` seconds."""
    observer = GraphObserver(domain_id)
    log = ObservationLog(exclude=frozenset({observer.fqn}))
    started = time.monotonic()
    last_report = started
    try:
        while True:
            now = time.monotonic()
            log.add_sample(observer.sample(), now)
            if progress is not None and now - last_report >= progress_every_s:
                progress(log, now - started)
                last_report = now
            if now - started >= duration_s:
                break
            # Pace the sampling; the graph cache has no change event rclpy exposes to wait on.
            time.sleep(max(0.0, min(period_s, started + duration_s - time.monotonic())))
    finally:
        observer.close()
    if progress is not None:
        progress(log, time.monotonic() - started)
    return log
