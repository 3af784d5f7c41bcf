"""DDS grants → rmw_zenoh key expressions (pure): what each enclave may put, subscribe, serve and call.

rmw_zenoh names a topic's data ``<domain>/<topic without leading slash>/<type>/<type hash>`` and a
service's queries the same way with the service name (rmw_zenoh_cpp ``liveliness_utils.cpp``,
``TopicInfo``); an action is three services and two topics under ``<action>/_action/``, exactly as
in DDS.  The grants are the ones :func:`cobot_security.policy.grants.compute_dds_grants` compiles
for the permissions (one computation for every middleware), read back from their DDS mangling:
``rt/X`` a topic, ``rq/XRequest`` / ``rr/XReply`` the two sides of service ``X``.

A grant becomes ``<domain>/<name>/*/*``: exactly one chunk each for the type and its hash, so a
grant on ``/cell/joint_states`` does not also grant ``/cell/joint_states/extra`` (a trailing ``/**``
would).  A policy wildcard ``*`` inside a name token becomes Zenoh's in-chunk ``$*`` (a token that is
only ``*`` becomes ``*``); unlike DDS fnmatch it never crosses a ``/``, so Zenoh grants are never
wider than the DDS ones.  Zenoh has no single-character wildcard, so ``?`` is refused.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cobot_security.errors import PolicyError
from cobot_security.names import DISCOVERY_INFO_TOPIC
from cobot_security.policy.grants import compute_dds_grants
from cobot_security.policy.model import Enclave, WorkcellPolicy

TOPIC, REQUEST, REPLY = "topic", "request", "reply"
#: rmw_zenoh's liveliness (graph) tokens live under this admin space, per domain.
LIVELINESS_SPACE = "@ros2_lv"
#: Type chunks the proof's sessions use (any one chunk matches a grant's ``*/*``).
PROOF_TOPIC_TYPE = "std_msgs::msg::dds_::String_"
PROOF_SERVICE_TYPE = "std_srvs::srv::dds_::Trigger_"


@dataclass(frozen=True)
class ZenohGrants:
    """One enclave's rmw_zenoh grants on one domain, as key expressions (sorted, de-duplicated)."""

    enclave: str
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    serve: tuple[str, ...]
    call: tuple[str, ...]

    def is_empty(self) -> bool:
        """True when the enclave may do nothing at all on this middleware."""
        return not (self.publish or self.subscribe or self.serve or self.call)


def split_dds_name(dds_name: str) -> tuple[str, str] | None:
    """``(kind, ROS name)`` of a mangled DDS topic; None for names rmw_zenoh does not use."""
    if dds_name == DISCOVERY_INFO_TOPIC:
        return None  # rmw_zenoh keeps its graph in liveliness tokens, not in a topic
    if dds_name.startswith("rt/"):
        return TOPIC, "/" + dds_name[3:]
    if dds_name.startswith("rq/") and dds_name.endswith("Request"):
        return REQUEST, "/" + dds_name[3:-len("Request")]
    if dds_name.startswith("rr/") and dds_name.endswith("Reply"):
        return REPLY, "/" + dds_name[3:-len("Reply")]
    return None


def _chunk(token: str) -> str:
    return "*" if token == "*" else token.replace("*", "$*")


def grant_expression(domain_id: int, ros_name: str, *, source: str | None = None, enclave: str = "") -> str:
    """The key expression granting every type on ``ros_name`` (which may hold ``*`` wildcards).

    :raises PolicyError: the name holds a ``?`` wildcard, which key expressions cannot express.
    """
    if "?" in ros_name:
        raise PolicyError(source, f"enclaves.{enclave}" if enclave else None,
                          "names without '?' for the zenoh middleware (key expressions have no "
                          "single-character wildcard; use '*')", repr(ros_name))
    chunks = [_chunk(token) for token in ros_name.strip("/").split("/")]
    return "/".join([str(domain_id), *chunks, "*", "*"])


def proof_key(domain_id: int, dds_name: str) -> str | None:
    """The concrete key a proof session uses for a (wildcard-free) DDS name, or None if unused."""
    split = split_dds_name(dds_name)
    if split is None:
        return None
    kind, ros_name = split
    type_name = PROOF_TOPIC_TYPE if kind == TOPIC else PROOF_SERVICE_TYPE
    type_hash = "RIHS01_" + hashlib.sha256(type_name.encode()).hexdigest()
    return f"{domain_id}/{ros_name.strip('/')}/{type_name}/{type_hash}"


def compute_zenoh_grants(enclave: Enclave, domain_id: int, source: str | None = None) -> ZenohGrants:
    """The enclave's DDS grants as rmw_zenoh key expressions on ``domain_id``.

    :raises PolicyError: a granted name cannot be expressed as a key expression.
    """
    dds = compute_dds_grants(enclave)
    buckets: dict[str, set[str]] = {"publish": set(), "subscribe": set(), "serve": set(), "call": set()}
    sides = {(TOPIC, True): "publish", (TOPIC, False): "subscribe", (REPLY, True): "serve",
             (REQUEST, False): "serve", (REQUEST, True): "call", (REPLY, False): "call"}
    for names, writes in ((dds.publish, True), (dds.subscribe, False)):
        for name in names:
            split = split_dds_name(name)
            if split is not None:
                kind, ros_name = split
                key = grant_expression(domain_id, ros_name, source=source, enclave=enclave.path)
                buckets[sides[(kind, writes)]].add(key)
    return ZenohGrants(enclave.path, *(tuple(sorted(buckets[k])) for k in ("publish", "subscribe", "serve", "call")))


def compute_policy_zenoh_grants(policy: WorkcellPolicy) -> list[ZenohGrants]:
    """Every enclave's grants on every domain of the policy (enclave order, then domain order).

    :raises PolicyError: a granted name cannot be expressed as a key expression.
    """
    return [compute_zenoh_grants(e, d, policy.source) for e in policy.enclaves for d in policy.domain_ids]
