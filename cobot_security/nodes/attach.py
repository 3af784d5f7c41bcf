"""Health reporting inside a user's own node: one call adds a timer and the two publishers.

    handle = attach_health_reporting(node, "/cell/arm_driver", keystore, policy_path)
    ...
    handle.detach()

Only what this node may report is published (the ownership rule of docs/health.md): the findings
about its own enclave (certificate, permissions, key file) and its process's ROS_SECURITY_*
environment, re-subjected to the enclave; keystore-wide and host findings are the host reporter's.
Every message is signed with the enclave's identity key from ``keystore``, with the node's fully
qualified name as ``node``.  The graph is not checked (that is health_reporter's job).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field, replace
from pathlib import Path

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.timer import Timer

from cobot_security import checks
from cobot_security.clock import utc_now
from cobot_security.health.ownership import owned_subjects
from cobot_security.health.reporter import ReporterConfig, collect_findings
from cobot_security.nodes.health_reporter import DIAGNOSTICS_TOPIC, HEALTH_TOPIC, REPORTER_CONFIG
from cobot_security.nodes.signing import HealthSigning
from cobot_security.policy.load import load_policy
from cobot_security.policy.model import WorkcellPolicy
from cobot_security.status import Finding, Level


def _enclave_subject(enclave: str) -> str:
    return enclave if enclave.startswith("/") else "/" + enclave


def select_findings(findings: list[Finding], policy: WorkcellPolicy | None, enclave: str, host: str) -> list[Finding]:
    """The findings the node reporter of ``enclave`` owns; its process environment becomes its enclave's."""
    owns = owned_subjects(policy, enclave, host)
    mine = [replace(f, subject=enclave) if f.check == checks.SECURITY_ENV else f for f in findings]
    return [f for f in mine if owns(f)]


@dataclass
class HealthReportingHandle:
    """What attach_health_reporting added to the node; :meth:`detach` removes it again."""

    node: Node
    enclave: str
    keystore: Path
    policy_path: Path
    timer: Timer | None = None
    publishers: tuple = field(default=())
    host: str = field(default_factory=socket.gethostname)
    warn_days: int = 30
    error_days: int = 7
    proof_max_age_days: int = 7
    published: int = 0
    signing: HealthSigning | None = None

    def findings(self) -> list[Finding]:
        """One tick's findings for this node's enclave (never raises)."""
        try:
            policy = load_policy(self.policy_path)
            config = ReporterConfig(
                keystore=self.keystore, policy=policy, warn_days=self.warn_days, error_days=self.error_days,
                expected_uid=os.getuid(), host=self.host, proof_max_age_days=self.proof_max_age_days)
            found = collect_findings(config, utc_now(), dict(os.environ), None)
            return select_findings(list(found), policy, self.enclave, self.host)
        except Exception as exc:  # noqa: BLE001 - the user's node must keep running
            return [Finding(REPORTER_CONFIG, self.enclave, Level.ERROR,
                            f"health probes failed: {type(exc).__name__}: {exc}")]

    def tick(self) -> None:
        """Publish one signed report now."""
        if self.signing is None:
            self.signing = HealthSigning(self.node, self.keystore, None, enclave=self.enclave, host=self.host)
        msg = self.signing.array(self.findings(), utc_now())
        for publisher in self.publishers:
            publisher.publish(msg)
        self.published += 1

    def detach(self) -> None:
        """Remove the timer and publishers from the node."""
        if self.timer is not None:
            self.node.destroy_timer(self.timer)
            self.timer = None
        for publisher in self.publishers:
            self.node.destroy_publisher(publisher)
        self.publishers = ()


def attach_health_reporting(
    node: Node, enclave: str, keystore: Path, policy_path: Path, period_s: float = 1.0
) -> HealthReportingHandle:
    """Add a timer and publishers to ``node`` that report its own enclave's health, signed with its key."""
    if not period_s > 0:
        raise ValueError(f"period_s must be positive, got {period_s!r}")
    handle = HealthReportingHandle(node=node, enclave=_enclave_subject(enclave), keystore=Path(keystore),
                                   policy_path=Path(policy_path))
    handle.signing = HealthSigning(node, handle.keystore, None, enclave=handle.enclave, host=handle.host)
    handle.publishers = (
        node.create_publisher(DiagnosticArray, HEALTH_TOPIC, 10),
        node.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, 10),
    )
    handle.timer = node.create_timer(period_s, handle.tick)
    return handle
