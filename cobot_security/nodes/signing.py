"""Signed health arrays for a node: which enclave it is, its keystore key, one call per message.

    signing = HealthSigning(node, keystore, policy)           # once, after the node exists
    publisher.publish(signing.array(findings, utc_now()))     # every report

The enclave comes from :func:`cobot_security.health.signer.resolve_enclave` with the enclave rcl
gave this node (read from the graph, where the node's own entry is known as soon as it exists).
When the node cannot sign (no enclave, key unreadable or refused), the statuses go out unsigned
with one ``cobot_security/health_signing/<enclave or host>`` ERROR saying why, and the error is
logged (throttled); the supervisor drops unsigned messages, so the gap is visible on both sides.
"""

from __future__ import annotations

import datetime as _dt
import os
import socket
from collections.abc import Iterable
from pathlib import Path

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node

from cobot_security.errors import CobotSecurityError
from cobot_security.health.envelope import REPORTER_KEY, SIGNING_CHECK, StatusRecord
from cobot_security.health.signer import SignerSource, resolve_enclave
from cobot_security.nodes.convert import finding_record, records_to_array
from cobot_security.policy.model import WorkcellPolicy
from cobot_security.status import STATUS_PREFIX, Finding, Level

__all__ = ["HealthSigning", "rcl_enclave"]


def rcl_enclave(node: Node) -> str | None:
    """The enclave rcl gave ``node`` (``--enclave``; ``/`` when none), from its own graph entry."""
    found = {enclave for name, namespace, enclave in node.get_node_names_and_namespaces_with_enclaves()
             if name == node.get_name() and namespace == node.get_namespace()}
    return found.pop() if len(found) == 1 else None


class HealthSigning:
    """Builds the node's health arrays, signed with its enclave's identity key when it can."""

    def __init__(self, node: Node, keystore: Path, policy: WorkcellPolicy | None, enclave: str | None = None,
                 host: str | None = None) -> None:
        self.node = node
        self.host = host or socket.gethostname()
        self.reporter = node.get_fully_qualified_name()
        self.enclave = enclave or resolve_enclave(os.environ, rcl_enclave(node), policy, self.reporter)
        self.source = SignerSource(keystore, self.enclave, self.reporter, self.host) if self.enclave else None
        self.error = "" if self.enclave else (
            f"no enclave for node {self.reporter}: run it with --enclave (or ROS_SECURITY_ENCLAVE_OVERRIDE) "
            "or name it in the policy")
        self.signed = 0
        self.unsigned = 0

    def _signature(self, records: list[StatusRecord], now: _dt.datetime) -> StatusRecord:
        if self.source is None:
            raise CobotSecurityError(self.error)
        return self.source.current().sign(records, now)

    def array(self, findings: Iterable[Finding], now: _dt.datetime) -> DiagnosticArray:
        """``findings`` as a stamped array, the signature status last (or a health_signing ERROR)."""
        records = [finding_record(f, self.host, self.reporter) for f in findings]
        try:
            records.append(self._signature(records, now))
            self.error = ""
            self.signed += 1
        except (CobotSecurityError, UnicodeEncodeError, ValueError) as exc:
            self.error = str(exc) if isinstance(exc, CobotSecurityError) else f"{type(exc).__name__}: {exc}"
            self.unsigned += 1
            self.node.get_logger().error(f"health goes out unsigned: {self.error}", throttle_duration_sec=30.0)
            subject = self.enclave or "/" + self.host
            records.append(StatusRecord(int(Level.ERROR), f"{STATUS_PREFIX}/{SIGNING_CHECK}{subject}",
                                        f"health not signed: {self.error}", self.host,
                                        ((REPORTER_KEY, self.reporter),)))
        return records_to_array(records, now)
