"""The keystore_manager's renewal exchange over the ROS graph: bytes in, bytes out, nothing decided here.

Requests go to ``/cobot_security/ca/requests``, answers to ``/cobot_security/ca/responses/<host>``,
both ``std_msgs/String`` carrying the JSON documents of docs/deployment.md.  The authority keeps
one answer per host topic (transient local), so a member that joins late still sees it (and
ignores it unless it answers its own request).  The decisions are
:class:`~cobot_security.keystore.host_renewal.MemberSession` and
:class:`~cobot_security.keystore.host_renewal.AuthoritySession`.
"""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Callable

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String

from cobot_security.clock import utc_now
from cobot_security.keystore.host_checks import RateLimit
from cobot_security.keystore.host_renewal import (
    REQUESTS_TOPIC,
    AuthoritySession,
    Installed,
    MemberSession,
    authority_finding,
    member_findings,
    responses_topic,
)
from cobot_security.nodes.params import KeystoreManagerParams
from cobot_security.policy.model import WorkcellPolicy
from cobot_security.status import Finding

REQUEST_QOS = QoSProfile(depth=16, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE,
                         history=HistoryPolicy.KEEP_LAST)
ANSWER_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                        durability=DurabilityPolicy.TRANSIENT_LOCAL, history=HistoryPolicy.KEEP_LAST)


class AuthorityLink:
    """Answers renewal and CRL requests of the policy's hosts."""

    def __init__(self, node: Node, params: KeystoreManagerParams, passphrase: bytes | None,
                 policy: Callable[[], WorkcellPolicy | None]) -> None:
        """Subscribe to the requests; one answer publisher per host of the policy."""
        self.node = node
        self.policy = policy
        self.session = AuthoritySession(params.common.keystore, passphrase,
                                        RateLimit(params.max_requests_per_minute, _dt.timedelta(minutes=1)))
        self._publishers: dict[str, object] = {}
        current = policy()
        for host in current.hosts if current is not None else ():
            self._publisher(host.name)
        node.create_subscription(String, REQUESTS_TOPIC, self._on_request, REQUEST_QOS)

    def _publisher(self, host: str) -> object:
        if host not in self._publishers:
            self._publishers[host] = self.node.create_publisher(String, responses_topic(host), ANSWER_QOS)
        return self._publishers[host]

    def _on_request(self, msg: String) -> None:
        current = self.policy()
        if current is None:
            return
        answer = self.session.on_request(msg.data.encode("utf-8", "replace"), current, utc_now())
        if answer is None:
            self.node.get_logger().warning(f"renewal request dropped: {self.session.last_problem}")
            return
        self._publisher(answer.host).publish(String(data=answer.document.decode("ascii")))  # type: ignore[attr-defined]
        if answer.issued or answer.refused:
            self.node.get_logger().info(f"answered {answer.package.kind} request of host {answer.host}: "
                                        f"{len(answer.issued)} issued, {len(answer.refused)} refused")

    def findings(self) -> list[Finding]:
        """The authority's own status."""
        return [authority_finding(self.session)]


class MemberLink:
    """Sends this host's requests and installs the answers."""

    def __init__(self, node: Node, params: KeystoreManagerParams,
                 on_installed: Callable[[Installed, float], None]) -> None:
        """Publish requests; subscribe to this host's answers."""
        self.node = node
        self.session = MemberSession(params.common.keystore, params.host,
                                     _dt.timedelta(seconds=params.request_timeout_s), params.max_batch)
        self._on_installed = on_installed
        self._policy: WorkcellPolicy | None = None
        self._sent = 0.0  # monotonic time of the last request (round-trip latency)
        self._started = time.monotonic()
        self._grace_s = params.request_timeout_s  # discovery time before a missing authority is a problem
        self._requests = node.create_publisher(String, REQUESTS_TOPIC, REQUEST_QOS)
        node.create_subscription(String, responses_topic(params.host), self._on_answer, ANSWER_QOS)

    def check(self, policy: WorkcellPolicy) -> list[Finding]:
        """Send the next request when there is one (and the authority listens); this host's statuses."""
        self._policy = policy
        if self._requests.get_subscription_count() > 0 or self.session.outstanding is not None:
            request = self.session.next_request(policy, utc_now())
            if request is not None:
                self._sent = time.monotonic()
                self._requests.publish(String(data=request.decode("ascii")))
        elif time.monotonic() - self._started > self._grace_s:
            self.session.last_problem = f"no authority listens on {REQUESTS_TOPIC}"
        return member_findings(self.session, policy)

    def _on_answer(self, msg: String) -> None:
        installed = self.session.on_answer(msg.data.encode("utf-8", "replace"), utc_now())
        latency = time.monotonic() - self._sent
        if installed is None:
            if self.session.last_problem:
                self.node.get_logger().error(self.session.last_problem)
            return
        result = installed.result
        if result.changed or result.removed or result.refused:
            self.node.get_logger().info(
                f"installed {installed.kind} answer in {latency:.3f} s: {len(result.changed)} enclave(s) renewed, "
                f"{len(result.removed)} removed, {len(result.refused)} refused")
        self._on_installed(installed, latency)
        if self._policy is not None and installed.result.changed:
            self.check(self._policy)  # more may be due (batches)
