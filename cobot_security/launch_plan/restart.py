"""Rolling restart after a certificate rotation: which nodes, in which order, each rotation once.

Pure planning for the launch side (:mod:`cobot_security.launch_integration.rolling_restart`) and
the demo: keystore_manager announces ``cobot_security/restart_required/<enclave>`` on the health
topic; the nodes of that enclave restart one at a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from cobot_security.keystore.reconcile import RESTART_REQUIRED
from cobot_security.policy.model import WorkcellPolicy
from cobot_security.status import parse_status_name

__all__ = [
    "RESTART_CHECK",
    "RestartRequest",
    "plan_rolling_restart",
    "restart_requests",
    "restart_targets",
]

#: Health check name keystore_manager uses after rotating an enclave's certificate.
RESTART_CHECK = RESTART_REQUIRED


@dataclass(frozen=True)
class RestartRequest:
    """A rotated enclave whose processes must restart to load the new certificate.

    ``token`` tells one rotation from the next (the new ``not_after``, else the status message),
    so that a status republished every period restarts a node once, not on every message.
    """

    enclave: str
    token: str


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
