"""Node parameters: declared with descriptors, read once into frozen config dataclasses.

Names and defaults are the contract of DESIGN.md ("Common options and parameters").  Every
parameter is read-only: the nodes read them at start and never re-read them.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rcl_interfaces.msg import IntegerRange, ParameterDescriptor
from rclpy.exceptions import ParameterException
from rclpy.node import Node

from cobot_security.errors import InputError
from cobot_security.keystore.layout import KeystoreLayout
from cobot_security.resources import default_keystore, shipped_file


@dataclass(frozen=True)
class CommonParams:
    """Parameters shared by the security nodes."""

    keystore: Path
    policy: Path
    controls: Path
    attestations: Path
    period_s: float
    stale_after_s: float


@dataclass(frozen=True)
class ReporterParams:
    """health_reporter parameters."""

    common: CommonParams
    warn_days: int
    error_days: int
    check_graph: bool
    proof_max_age_days: int
    host: str


@dataclass(frozen=True)
class SupervisorLimits:
    """The supervisor's bounds under hostile input (docs/health.md, "Limits")."""

    max_reporters: int
    max_statuses_per_message: int
    max_message_bytes: int
    max_clock_skew_s: float
    forget_after_s: float
    max_incidents_per_window: int
    incident_window_s: float
    max_evidence_bytes: int
    health_queue_depth: int


@dataclass(frozen=True)
class SupervisorParams:
    """supervisor parameters."""

    common: CommonParams
    error_after_s: float
    confirm_count: int
    response_topic: str
    response_service: str
    incident_plan: Path
    incident_dir: Path
    limits: SupervisorLimits


#: keystore_manager roles (DESIGN.md "Hosts, enrollment and renewal across hosts").
MANAGER_ROLES: tuple[str, ...] = ("standalone", "authority", "member")


@dataclass(frozen=True)
class KeystoreManagerParams:
    """keystore_manager parameters."""

    common: CommonParams
    auto_rotate: bool
    check_period_s: float
    role: str = "standalone"
    host: str = ""
    request_timeout_s: float = 10.0
    max_batch: int = 64
    max_requests_per_minute: int = 30


def _descriptor(description: str, *, seconds: bool = False, int_min: int | None = None,
                int_max: int = 1_000_000) -> ParameterDescriptor:
    # Durations accept integers too (``-p period_s:=1``); they are checked by _positive instead.
    desc = ParameterDescriptor(description=description, read_only=True, dynamic_typing=seconds)
    if int_min is not None:
        desc.integer_range = [IntegerRange(from_value=int_min, to_value=int_max, step=0)]
    return desc


def _declare(node: Node, name: str, default: object, description: str, *, seconds: bool = False,
             int_min: int | None = None, int_max: int = 1_000_000) -> Any:
    """Declare one read-only parameter; a wrong type or range is an InputError (exit 2).

    The value is whatever rclpy holds for the parameter (typed by ``default`` unless ``seconds``).
    """
    try:
        return node.declare_parameter(
            name, default, _descriptor(description, seconds=seconds, int_min=int_min, int_max=int_max)).value
    except ParameterException as exc:
        raise InputError(None, name, f"a value like {default!r}", str(exc).split(". Reason:")[0]) from exc


def _positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise InputError(None, name, "a positive number of seconds", repr(value))
    return float(value)


def declare_common(node: Node) -> CommonParams:
    """Declare keystore, policy, controls, attestations, period_s and stale_after_s."""
    keystore = _declare(node, "keystore", str(default_keystore(os.environ)),
                        "Keystore directory ($ROS_SECURITY_KEYSTORE, else keystores/default)")
    policy = _declare(node, "policy", str(shipped_file("policies/workcell.yaml")),
                      "Workcell policy YAML (desired enclaves and grants)")
    controls = _declare(node, "controls", str(shipped_file("policies/posture_controls.yaml")),
                        "Posture controls catalog YAML")
    attestations = _declare(node, "attestations", str(shipped_file("policies/attestations.yaml")),
                            "Attestations YAML for controls that need a human statement")
    period_s = _positive("period_s", _declare(node, "period_s", 1.0, "Report / evaluation period [s]",
                                              seconds=True))
    stale_after_s = _positive("stale_after_s", _declare(
        node, "stale_after_s", 3.0 * period_s,
        "A reporter silent for this long is STALE [s] (default 3 x period_s)", seconds=True))
    return CommonParams(
        keystore=Path(str(keystore)),
        policy=Path(str(policy)),
        controls=Path(str(controls)),
        attestations=Path(str(attestations)),
        period_s=period_s,
        stale_after_s=stale_after_s,
    )


def declare_reporter(node: Node) -> ReporterParams:
    """Declare the health_reporter parameters (common + warn_days, error_days, check_graph)."""
    common = declare_common(node)
    warn_days = int(_declare(node, "warn_days", 30, "Certificate days left below which to WARN", int_min=0))
    error_days = int(_declare(node, "error_days", 7, "Certificate days left below which to ERROR", int_min=0))
    if error_days > warn_days:
        raise InputError(None, "error_days", f"at most warn_days ({warn_days})", str(error_days))
    check_graph = bool(_declare(node, "check_graph", True, "Check the live ROS graph against the policy"))
    proof_max_age_days = int(_declare(node, "proof_max_age_days", 7,
                                      "Maximum age of the last DDS enforcement proof [days]", int_min=0))
    return ReporterParams(common, warn_days, error_days, check_graph, proof_max_age_days, _host(node))


def _host(node: Node) -> str:
    """The ``host`` parameter: this machine's name in the policy (default: its host name)."""
    return str(_declare(node, "host", socket.gethostname(),
                        "This machine's host name in the policy's hosts: (default: the machine's host name)"))


def declare_supervisor(node: Node) -> SupervisorParams:
    """Declare the supervisor parameters (common + error_after_s, confirm_count, response hooks)."""
    common = declare_common(node)
    error_after_s = _positive("error_after_s", _declare(
        node, "error_after_s", 2.0 * common.stale_after_s,
        "A reporter silent for this long turns from STALE to ERROR [s] (default 2 x stale_after_s)",
        seconds=True))
    if error_after_s < common.stale_after_s:
        raise InputError(None, "error_after_s", f"at least stale_after_s ({common.stale_after_s})",
                         str(error_after_s))
    confirm_count = int(_declare(node, "confirm_count", 2,
                                 "Evaluations a control level must hold before it is an alert", int_min=1))
    response_topic = str(_declare(
        node, "response_topic", "",
        "std_msgs/String topic published (JSON) on a Critical control failure, e.g. a safety-stop "
        "request; empty disables"))
    response_service = str(_declare(
        node, "response_service", "",
        "std_srvs/Trigger service called once per Critical control failure; empty disables"))
    incident_plan = str(_declare(node, "incident_plan", str(shipped_file("policies/incident_response.yaml")),
                                 "Incident response plan YAML (playbooks the supervisor executes)"))
    incident_dir = str(_declare(node, "incident_dir", "",
                                "Directory of incident records and evidence "
                                "(default <keystore>/.cobot_security/incidents)"))
    return SupervisorParams(common, error_after_s, confirm_count, response_topic, response_service,
                            Path(incident_plan),
                            Path(incident_dir) if incident_dir else KeystoreLayout(common.keystore).incidents_dir,
                            declare_supervisor_limits(node, error_after_s))


def declare_supervisor_limits(node: Node, error_after_s: float) -> SupervisorLimits:
    """Declare the supervisor's bounds: reporters, message size, clock skew, forgetting, incidents, evidence."""
    def count(name: str, default: int, description: str, most: int = 1_000_000) -> int:
        return int(_declare(node, name, default, description, int_min=1, int_max=most))

    max_reporters = count("max_reporters", 1024, "Most reporters tracked; a new one beyond is dropped")
    max_statuses = count("max_statuses_per_message", 500, "Health messages with more statuses are dropped whole")
    max_bytes = count("max_message_bytes", 262_144, "Health messages larger than this (serialized) are dropped "
                      "before they are decoded [bytes]", most=64 * 1024 * 1024)
    skew = _positive("max_clock_skew_s", _declare(
        node, "max_clock_skew_s", 30.0, "A signed message whose sent_at is further from now is dropped [s]",
        seconds=True))
    forget = _positive("forget_after_s", _declare(
        node, "forget_after_s", max(3600.0, 2.0 * error_after_s),
        "A reporter silent for this long is forgotten, after one evaluation showed it ERROR [s]", seconds=True))
    if forget <= max(error_after_s, skew):
        raise InputError(None, "forget_after_s", f"more than error_after_s ({error_after_s}) and max_clock_skew_s "
                                                 f"({skew})", str(forget))
    incidents = count("max_incidents_per_window", 20, "Most incidents opened per incident_window_s; more are counted")
    window = _positive("incident_window_s", _declare(
        node, "incident_window_s", 600.0, "Window of max_incidents_per_window [s]", seconds=True))
    evidence = count("max_evidence_bytes", 262_144, "Largest evidence document written per incident file [bytes]",
                     most=1024 * 1024 * 1024)
    depth = count("health_queue_depth", 100, "Health messages the subscription queues (DDS drops the oldest beyond); "
                  "memory for them is at most this many times the largest message the middleware delivers",
                  most=10_000)
    return SupervisorLimits(max_reporters, max_statuses, max_bytes, skew, forget, incidents, window, evidence, depth)


def declare_keystore_manager(node: Node) -> KeystoreManagerParams:
    """Declare the keystore_manager parameters (common + auto_rotate, check_period_s)."""
    common = declare_common(node)
    auto_rotate = bool(_declare(
        node, "auto_rotate", False,
        "Rotate certificates inside their renew window without waiting for ~/rotate_due"))
    check_period_s = _positive("check_period_s", _declare(
        node, "check_period_s", 60.0, "Period of comparing the keystore with the policy [s]", seconds=True))
    role = str(_declare(node, "role", "standalone",
                        "standalone (one machine), authority (holds the CA keys, answers renewals) or member "
                        "(no CA keys, renews this host's enclaves through the authority)"))
    if role not in MANAGER_ROLES:
        raise InputError(None, "role", " or ".join(MANAGER_ROLES), repr(role))
    request_timeout_s = _positive("request_timeout_s", _declare(
        node, "request_timeout_s", 10.0, "member: a request without an answer is given up after [s]", seconds=True))
    max_batch = int(_declare(node, "max_batch", 64, "member: enclaves renewed per request", int_min=1))
    max_requests = int(_declare(node, "max_requests_per_minute", 30,
                                "authority: requests answered per host and minute (more are dropped)", int_min=1))
    return KeystoreManagerParams(common, auto_rotate, check_period_s, role, _host(node), request_timeout_s,
                                 max_batch, max_requests)
