"""Health reporting inside a user's own node: one call adds a timer and the two publishers.

    handle = attach_health_reporting(node, "/cell/arm_driver", keystore, policy_path)
    ...
    handle.detach()

Only the probes about this node's own enclave and the keystore-wide ones are published, with the
node's fully qualified name as ``reporter``; the graph is not checked (that is health_reporter's job).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.timer import Timer

from cobot_security import checks
from cobot_security.clock import utc_now
from cobot_security.health.probe import CA_SUBJECT, KEYSTORE_SUBJECT
from cobot_security.health.reporter import PROBE_SUBJECT, ReporterConfig, collect_findings
from cobot_security.nodes.convert import findings_to_array
from cobot_security.nodes.health_reporter import DIAGNOSTICS_TOPIC, HEALTH_TOPIC, config_error
from cobot_security.policy.load import load_policy
from cobot_security.status import Finding

#: Checks whose findings concern the whole keystore (or this process), not one enclave.
KEYSTORE_WIDE_CHECKS = frozenset({
    checks.GOVERNANCE, checks.CRL, checks.KEYSTORE_INTEGRITY, checks.SECURITY_ENV,
})
#: Subjects of keystore-wide findings (the keystore, its CA directory, a probe that failed).
KEYSTORE_WIDE_SUBJECTS = frozenset({KEYSTORE_SUBJECT, CA_SUBJECT, PROBE_SUBJECT})


def _enclave_subject(enclave: str) -> str:
    return enclave if enclave.startswith("/") else "/" + enclave


def select_findings(findings: list[Finding], enclave: str) -> list[Finding]:
    """The findings about ``enclave`` (subject or ``enclave`` value) plus the keystore-wide ones."""
    subject = _enclave_subject(enclave)
    return [
        f for f in findings
        if f.subject == subject or f.value("enclave") == subject or f.check in KEYSTORE_WIDE_CHECKS
        or f.subject.lstrip("/") in KEYSTORE_WIDE_SUBJECTS
    ]


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

    def findings(self) -> list[Finding]:
        """One tick's findings for this node's enclave (never raises)."""
        try:
            policy = load_policy(self.policy_path)
            config = ReporterConfig(
                keystore=self.keystore, policy=policy, warn_days=self.warn_days, error_days=self.error_days,
                expected_uid=os.getuid(), host=self.host, proof_max_age_days=self.proof_max_age_days)
            return select_findings(list(collect_findings(config, utc_now(), dict(os.environ), None)), self.enclave)
        except Exception as exc:  # noqa: BLE001 - the user's node must keep running
            return [config_error(self.host, f"health probes failed: {type(exc).__name__}: {exc}")]

    def tick(self) -> None:
        """Publish one report now."""
        msg = findings_to_array(self.findings(), self.host, self.node.get_fully_qualified_name(), utc_now())
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
    """Add a timer and publishers to ``node`` that report its own enclave's keystore health."""
    if not period_s > 0:
        raise ValueError(f"period_s must be positive, got {period_s!r}")
    handle = HealthReportingHandle(node=node, enclave=_enclave_subject(enclave), keystore=Path(keystore),
                                   policy_path=Path(policy_path))
    handle.publishers = (
        node.create_publisher(DiagnosticArray, HEALTH_TOPIC, 10),
        node.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, 10),
    )
    handle.timer = node.create_timer(period_s, handle.tick)
    return handle
