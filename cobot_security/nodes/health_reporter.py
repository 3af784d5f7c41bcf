"""health_reporter node: every period_s, run the health probes and publish the statuses.

The node is an adapter: it reads the wall clock, the process environment and the ROS graph once
per tick, hands them to :func:`cobot_security.health.reporter.collect_findings` and publishes the
result on ``/cobot_security/health`` and ``/diagnostics``, signed with its enclave's identity key
(:mod:`cobot_security.nodes.signing`).  It never crashes on bad input: a policy that cannot be
loaded becomes one ERROR status (retried every tick).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node

from cobot_security.clock import utc_now
from cobot_security.errors import CobotSecurityError
from cobot_security.health.graph_probes import GraphFacts, NodeFact
from cobot_security.health.reporter import ReporterConfig, collect_findings
from cobot_security.nodes.graph_observer import sample_node
from cobot_security.nodes.params import ReporterParams, declare_reporter
from cobot_security.nodes.signing import HealthSigning
from cobot_security.policy.load import load_policy
from cobot_security.policy.model import WorkcellPolicy
from cobot_security.status import Finding, Level

HEALTH_TOPIC = "/cobot_security/health"
DIAGNOSTICS_TOPIC = "/diagnostics"
#: Check name of the reporter's own configuration problems (policy unreadable, ...).
REPORTER_CONFIG = "reporter_config"


def graph_facts(node: Node) -> GraphFacts:
    """Nodes (with enclaves), (topic, publisher FQN) pairs and every node's endpoints, sorted."""
    nodes = tuple(sorted(
        (NodeFact(name=name, namespace=namespace, enclave=enclave)
         for name, namespace, enclave in node.get_node_names_and_namespaces_with_enclaves()),
        key=lambda fact: (fact.namespace, fact.name, fact.enclave)))
    publishers = set()
    for topic, _types in node.get_topic_names_and_types():
        for info in node.get_publishers_info_by_topic(topic):
            ns = info.node_namespace.rstrip("/")
            publishers.add((topic, f"{ns}/{info.node_name}"))
    # Every endpoint of every visible node, read as `policy learn` reads it (policy_drift).
    endpoints = tuple(sample for fact in nodes if not fact.name.startswith("_")
                      for sample in [sample_node(node, fact.name, fact.namespace, fact.enclave)] if sample is not None)
    return GraphFacts(nodes=nodes, publishers=tuple(sorted(publishers)), endpoints=endpoints)


def config_error(host: str, message: str) -> Finding:
    """The single ERROR status published while the reporter cannot run its probes."""
    return Finding(REPORTER_CONFIG, "/" + host, Level.ERROR, message)


class HealthReporterNode(Node):
    """Timer → probes → DiagnosticArray on /cobot_security/health and /diagnostics."""

    def __init__(self, node_name: str = "health_reporter", **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self.params: ReporterParams = declare_reporter(self)
        self.host = self.params.host
        self._policy: WorkcellPolicy | None = None
        self._policy_error = ""
        self._health_pub = self.create_publisher(DiagnosticArray, HEALTH_TOPIC, 10)
        self._diag_pub = self.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, 10)
        self._load_policy()
        self.signing = HealthSigning(self, self.params.common.keystore, self._policy, host=self.host)
        self._timer = self.create_timer(self.params.common.period_s, self._tick)
        self.get_logger().info(
            f"reporting keystore {self.params.common.keystore} against {self.params.common.policy} "
            f"every {self.params.common.period_s}s, signed as {self.signing.enclave or '(no enclave: unsigned)'}")

    def _load_policy(self) -> None:
        try:
            self._policy = load_policy(self.params.common.policy)
            self._policy_error = ""
        except CobotSecurityError as exc:
            if str(exc) != self._policy_error:
                self.get_logger().error(f"cannot load the policy: {exc}")
            self._policy_error = str(exc)

    def findings(self) -> list[Finding]:
        """One tick's findings (the clock, environment and graph read here, once)."""
        if self._policy is None:
            self._load_policy()
        if self._policy is None:
            return [config_error(self.host, f"policy not loaded: {self._policy_error}")]
        p = self.params
        config = ReporterConfig(
            keystore=p.common.keystore,
            policy=self._policy,
            warn_days=p.warn_days,
            error_days=p.error_days,
            expected_uid=os.getuid(),
            host=self.host,
            proof_max_age_days=p.proof_max_age_days,
        )
        graph = graph_facts(self) if p.check_graph else None
        return list(collect_findings(config, utc_now(), dict(os.environ), graph))

    def _tick(self) -> None:
        try:
            findings = self.findings()
        except Exception as exc:  # noqa: BLE001 - report, never crash the node
            self.get_logger().error(f"health probes failed: {type(exc).__name__}: {exc}")
            findings = [config_error(self.host, f"health probes failed: {type(exc).__name__}: {exc}")]
        msg = self.signing.array(findings, utc_now())
        if not self.context.ok():
            return  # shutting down (SIGINT/SIGTERM arrived during the probes)
        self._health_pub.publish(msg)
        self._diag_pub.publish(msg)


def run_node(factory: Callable[[], Node], args: Sequence[str] | None) -> int:
    """Init rclpy, spin the node until SIGINT/SIGTERM, shut down quietly; the process exit code."""
    rclpy.init(args=list(args) if args is not None else None)
    node = None
    code = 0
    try:
        node = factory()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except CobotSecurityError as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = getattr(exc, "exit_code", 1)
    except Exception:
        if rclpy.ok():
            raise
        # a callback was cut off by SIGINT/SIGTERM shutting the context down: a clean exit
    finally:
        if node is not None:
            node.destroy_node()
        if rclpy.ok():
            rclpy.try_shutdown()
    return code


def main(args: Sequence[str] | None = None) -> int:
    """Console entry point ``health_reporter``."""
    return run_node(HealthReporterNode, args)


if __name__ == "__main__":
    sys.exit(main())
