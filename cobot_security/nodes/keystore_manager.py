"""keystore_manager node: keep the keystore in line with the policy and say which nodes must restart.

On start and every ``check_period_s`` the node re-reads the policy, plans a reconcile
(:mod:`cobot_security.keystore.reconcile`), applies it (certificate rotations only when
``auto_rotate``) and keeps the resulting statuses, which it publishes every ``period_s`` on
``/cobot_security/health`` and ``/diagnostics``: one ``cobot_security/cert_rotation/<enclave>`` per
enclave and, after an enclave was re-issued, ``cobot_security/restart_required/<enclave>`` naming
the node FQNs to restart (what a launch file's rolling restart listens to), signed with its
enclave's identity key.  Services:
``/keystore_manager/rotate_due`` rotates due enclaves now, ``/keystore_manager/get_status``
returns the current plan as JSON.  The clock and environment are read once per check; every error
becomes an ERROR status and the node keeps running.

Parameter ``role`` (docs/deployment.md): ``standalone`` is the above; ``authority`` does the same on
the CA machine and also answers the renewal and CRL requests of the cell's hosts
(:mod:`cobot_security.nodes.ca_exchange`); ``member`` holds no CA key and, every check, asks the
authority to renew this host's enclaves inside their renew window (new keys born here) or for the
current CRL, installs the answers and announces ``restart_required`` as above.  ``host`` names
this machine in the policy.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from std_srvs.srv import Trigger

from cobot_security.clock import iso_utc, utc_now
from cobot_security.errors import CobotSecurityError
from cobot_security.keystore.host_renewal import Installed
from cobot_security.keystore.reconcile import (
    KEYSTORE_MANAGER,
    KEYSTORE_SUBJECT,
    RESTART_REQUIRED,
    ReconcileOutcome,
    ReconcilePlan,
    apply_reconcile,
    manager_error,
    plan_reconcile,
    reconcile_findings,
    restart_finding,
)
from cobot_security.keystore.store import Keystore
from cobot_security.nodes.ca_exchange import AuthorityLink, MemberLink
from cobot_security.nodes.health_reporter import run_node
from cobot_security.nodes.params import KeystoreManagerParams, declare_keystore_manager
from cobot_security.nodes.signing import HealthSigning
from cobot_security.policy.load import load_policy
from cobot_security.policy.model import WorkcellPolicy
from cobot_security.status import Finding, Level

HEALTH_TOPIC = "/cobot_security/health"
DIAGNOSTICS_TOPIC = "/diagnostics"
ROTATE_SERVICE = "/keystore_manager/rotate_due"
STATUS_SERVICE = "/keystore_manager/get_status"
#: The CA key passphrase variable, the same one the CLI reads by default.
PASSPHRASE_ENV = "COBOT_SECURITY_CA_PASSPHRASE"
#: How long one check waits for another process's keystore lock before reporting it (the node's
#: callbacks must not block for the store's default 30 s).
LOCK_TIMEOUT_S = 2.0
#: A restart_required status is repeated for at least this long (and at least one check period),
#: so that a listener that joins late (e.g. a launch restarted under load) or drops a message still
#: sees it; ``rotated_at`` lets listeners act once.
RESTART_HOLD_S = 30.0


def _policy_or_none(path: Path) -> WorkcellPolicy | None:
    """The policy for finding this node's enclave; None when unreadable (each check reports that)."""
    try:
        return load_policy(path)
    except CobotSecurityError:
        return None


class KeystoreManagerNode(Node):
    """Timer → reconcile → cert_rotation / restart_required statuses; rotate_due and get_status services."""

    def __init__(self, node_name: str = "keystore_manager", **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self.params: KeystoreManagerParams = declare_keystore_manager(self)
        self.host = self.params.host
        self._findings: list[Finding] = [manager_error("starting: no check has run yet")]
        self._policy: WorkcellPolicy | None = None
        self._authority: AuthorityLink | None = None
        self._member = MemberLink(self, self.params, self._on_installed) if self.params.role == "member" else None
        self._restarts: dict[str, tuple[Finding, int]] = {}
        self._last_error = ""
        self._health_pub = self.create_publisher(DiagnosticArray, HEALTH_TOPIC, 10)
        self._diag_pub = self.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, 10)
        self.create_service(Trigger, ROTATE_SERVICE, self._on_rotate_due)
        self.create_service(Trigger, STATUS_SERVICE, self._on_get_status)
        common = self.params.common
        self.signing = HealthSigning(self, common.keystore, _policy_or_none(common.policy), host=self.host)
        self.get_logger().info(
            f"{self.params.role} keystore_manager of host {self.host}: keystore {common.keystore}, policy "
            f"{common.policy}, every {self.params.check_period_s}s (auto_rotate={self.params.auto_rotate})")
        self.check(allow_rotate=self.params.auto_rotate)
        if self.params.role == "authority":
            self._authority = AuthorityLink(self, self.params, _passphrase(), lambda: self._policy)
        self._check_timer = self.create_timer(self.params.check_period_s, self._on_check_timer)
        self._publish_timer = self.create_timer(common.period_s, self.publish)

    # -- one check: the clock and the environment are read here, once ------------------------------

    def _plan(self) -> tuple[Keystore, ReconcilePlan, WorkcellPolicy]:
        common = self.params.common
        now = utc_now()
        policy = load_policy(common.policy)
        self._policy = policy
        keystore = Keystore.open(common.keystore, _passphrase(), lock_timeout_s=LOCK_TIMEOUT_S)
        return keystore, plan_reconcile(keystore, policy, now), policy

    def _error(self, exc: Exception, what: str) -> None:
        text = str(exc) if isinstance(exc, CobotSecurityError) else f"{type(exc).__name__}: {exc}"
        if text != self._last_error:
            self.get_logger().error(f"{what}: {text}")
        self._last_error = text
        self._findings = [manager_error(f"{what}: {text}")]

    def _member_check(self) -> None:
        """A member's check: load the policy, let the exchange ask and report this host's enclaves."""
        assert self._member is not None
        try:
            policy = load_policy(self.params.common.policy)
            if policy.host(self.host) is None:
                raise CobotSecurityError(f"host {self.host} is not one of the policy's hosts "
                                         f"({', '.join(h.name for h in policy.hosts) or 'none'}): set -p host:=NAME")
            self._policy = policy
            self._findings = self._member.check(policy)
            problem = self._member.session.last_problem
            if problem and problem != self._last_error:
                self.get_logger().warning(problem)  # once per distinct problem, as errors are
            self._last_error = problem
        except Exception as exc:  # noqa: BLE001 - a bad keystore or policy is a status, not a crash
            self._error(exc, "cannot renew through the authority")

    def _on_installed(self, installed: Installed, latency_s: float) -> None:
        """Announce restart_required for every enclave an installed answer changed."""
        if self._policy is None:
            return
        repeats = math.ceil(max(RESTART_HOLD_S, self.params.check_period_s) / self.params.common.period_s)
        for path in installed.result.changed:
            finding = restart_finding(self._policy, path)
            stamped = replace(finding, values=finding.values + (("rotated_at", iso_utc(utc_now())),
                                                                ("renewal_latency_s", f"{latency_s:.3f}")))
            self._restarts[path] = (stamped, repeats)
        self.publish()

    def check(self, allow_rotate: bool) -> ReconcileOutcome | None:
        """Plan, apply and refresh the statuses; None (and an ERROR status) when it could not run."""
        if self._member is not None:
            self._member_check()
            return None
        try:
            keystore, plan, policy = self._plan()
            outcome = apply_reconcile(keystore, policy, plan, plan.now, allow_rotate=allow_rotate)
            if outcome.changed:
                plan = plan_reconcile(keystore, policy, plan.now)  # statuses describe the new state
            findings = reconcile_findings(policy, plan, outcome)
        except Exception as exc:  # noqa: BLE001 - a bad keystore or a held lock is a status, not a crash
            self._error(exc, "cannot reconcile the keystore")
            return None
        self._last_error = ""
        self._log_outcome(outcome)
        repeats = math.ceil(max(RESTART_HOLD_S, self.params.check_period_s) / self.params.common.period_s)
        rotated_at = plan.now.isoformat()
        kept = []
        for finding in findings:
            if finding.check == RESTART_REQUIRED:
                stamped = replace(finding, values=finding.values + (("rotated_at", rotated_at),))
                self._restarts[finding.subject] = (stamped, repeats)
            else:
                kept.append(finding)
        pending = len([a for a in plan.actions if a.kind != "orphan"])
        if not any(f.check == KEYSTORE_MANAGER for f in kept):  # an ERROR of the same name wins
            kept.append(Finding(KEYSTORE_MANAGER, KEYSTORE_SUBJECT, Level.OK,
                                "keystore matches the policy" if not pending else f"{pending} change(s) pending",
                                (("auto_rotate", str(self.params.auto_rotate).lower()),
                                 ("checked_at", rotated_at))))
        self._findings = kept
        return outcome

    def _log_outcome(self, outcome: ReconcileOutcome) -> None:
        log = self.get_logger()
        for label, names in (("created", outcome.created), ("re-signed", outcome.resigned),
                             ("rotated", outcome.rotated)):
            if names:
                log.info(f"{label}: {', '.join(names)}")
        for subject, message in outcome.failures:
            log.error(f"{subject}: {message}")

    def _on_check_timer(self) -> None:
        self.check(allow_rotate=self.params.auto_rotate)
        self.publish()

    # -- publishing ----------------------------------------------------------------------------------

    def current_findings(self) -> list[Finding]:
        """The statuses of the last check plus the restart_required ones still being repeated."""
        exchange = self._authority.findings() if self._authority is not None else []
        return list(self._findings) + exchange + [finding for finding, _left in self._restarts.values()]

    def publish(self) -> None:
        """Publish the current statuses on both topics (restart_required ones count down)."""
        if not self.context.ok():
            return  # shutting down
        msg = self.signing.array(self.current_findings(), utc_now())
        self._health_pub.publish(msg)
        self._diag_pub.publish(msg)
        self._restarts = {k: (f, left - 1) for k, (f, left) in self._restarts.items() if left > 1}

    # -- services ------------------------------------------------------------------------------------

    def _on_rotate_due(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        outcome = self.check(allow_rotate=True)
        self.publish()
        if outcome is None:
            response.success = False
            response.message = json.dumps({"error": self._last_error})
        else:
            response.success = not outcome.failures
            response.message = json.dumps(list(outcome.rotated))
        return response

    def _on_get_status(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        if self._member is not None:
            member = self._member.session.plan
            response.success = member is not None
            response.message = json.dumps({"role": "member", "host": self.host,
                                           "due": list(member.due) if member else [],
                                           "expired": list(member.expired) if member else [],
                                           "missing": list(member.missing) if member else []}, sort_keys=True)
            return response
        try:
            _keystore, plan, _policy = self._plan()
        except Exception as exc:  # noqa: BLE001 - reported to the caller, never raised
            response.success = False
            response.message = json.dumps({"error": f"{type(exc).__name__}: {exc}"})
            return response
        response.success = True
        response.message = json.dumps(plan.as_dict(), sort_keys=True)
        return response


def _passphrase() -> bytes | None:
    """The CA key passphrase from the environment (read by the adapter, never logged)."""
    value = os.environ.get(PASSPHRASE_ENV)
    return value.encode() if value else None


def main(args: Sequence[str] | None = None) -> int:
    """Console entry point ``keystore_manager``."""
    return run_node(KeystoreManagerNode, args)


if __name__ == "__main__":
    sys.exit(main())
