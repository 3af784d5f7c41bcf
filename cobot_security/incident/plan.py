"""The incident response plan (``policies/incident_response.yaml``, ``version: 1``) as typed values.

The plan is data the supervisor executes: roles and contacts, a severity per trigger, playbooks
keyed by trigger whose steps are automated actions or manual steps with an owner, and settings
(safety-stop topic, rate limits, maximum drill age).  Loading is strict (unknown keys, duplicate
ids, unknown roles are ``file:line: field`` errors); whether the plan is *sufficient* (every
critical trigger covered, drill recent) is :func:`plan_findings`, an ``incident_plan`` Finding.
Schema: ``docs/incident_response.md``.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from yaml.nodes import Node

from cobot_security.checks import INCIDENT_PLAN
from cobot_security.errors import InputError
from cobot_security.names import is_snake_case
from cobot_security.posture.attestations import Attestation
from cobot_security.status import Finding, Level
from cobot_security.yaml_source import (
    YamlContext,
    line_of,
    read_boolean,
    read_document,
    read_duration,
    read_integer,
    read_mapping,
    read_sequence,
    read_string,
    read_unique_items,
    read_yaml_file,
    require_key,
)

__all__ = [
    "ACTIONS", "AUTOMATED_ACTIONS", "DRILL_ATTESTATION", "PLAN_VERSION", "SEVERITIES", "TRIGGERS",
    "IncidentPlan", "Playbook", "RateLimits", "Role", "Step",
    "check_plan_file", "load_plan", "load_plan_text", "plan_findings",
]

PLAN_VERSION = 1
#: What can open an incident (see docs/incident_response.md for the exact detection rule of each).
TRIGGERS: tuple[str, ...] = ("control_error", "unknown_node", "integrity_violation", "revoked_identity_seen",
                             "segmentation_drift", "stale_reporter")
SEVERITIES: tuple[str, ...] = ("critical", "high", "medium", "low")
#: Actions the supervisor executes itself.
AUTOMATED_ACTIONS: tuple[str, ...] = ("publish_stop", "call_trigger", "keystore_rotate", "snapshot_evidence")
#: ``keystore_revoke`` is a *planned manual* step: the keystore_manager offers no revoke service
#: (only ``/keystore_manager/rotate_due``), so an owner runs ``cobot-security revoke``.
ACTIONS: tuple[str, ...] = AUTOMATED_ACTIONS + ("keystore_revoke", "manual")
#: The keystore manager's Trigger service used by ``keystore_rotate``.
ROTATE_SERVICE = "/keystore_manager/rotate_due"
#: The attestation a drill writes and the Incident response control requires.
DRILL_ATTESTATION = "incident_response_drill"
#: Subject of the plan's Finding: ``cobot_security/incident_plan/plan``.
PLAN_SUBJECT = "/plan"

_ROS_NAME = re.compile(r"(/[A-Za-z_][A-Za-z0-9_]*)+")
_TOP_KEYS = ("version", "name", "roles", "severity", "settings", "playbooks")
_ROLE_KEYS = ("name", "contact", "description")
_SETTINGS_KEYS = ("stop_topic", "drill_max_age", "rate_limit", "max_attempts")
_RATE_KEYS = ("per_incident", "global", "window")
_PLAYBOOK_KEYS = ("id", "trigger", "owner", "auto_close", "controls", "description", "steps")
_STEP_KEYS = ("action", "owner", "service", "topic", "description")


@dataclass(frozen=True)
class Role:
    """A role of the response team and how to reach whoever holds it."""

    id: str
    name: str
    contact: str
    description: str = ""


@dataclass(frozen=True)
class Step:
    """One playbook step: an automated action, or a manual step (``manual``/``keystore_revoke``) with an owner."""

    action: str
    owner: str = ""
    service: str = ""
    topic: str = ""
    description: str = ""

    @property
    def automated(self) -> bool:
        """True when the supervisor executes it (else an owner does)."""
        return self.action in AUTOMATED_ACTIONS

    def target(self, plan: IncidentPlan) -> str:
        """The topic or service the action uses ('' for actions without one)."""
        if self.action == "publish_stop":
            return self.topic or plan.stop_topic
        if self.action == "call_trigger":
            return self.service
        if self.action == "keystore_rotate":
            return ROTATE_SERVICE
        return ""


@dataclass(frozen=True)
class Playbook:
    """What to do when ``trigger`` fires (``controls`` narrows ``control_error`` to those ids)."""

    id: str
    trigger: str
    owner: str
    auto_close: bool
    steps: tuple[Step, ...]
    controls: tuple[str, ...] = ()
    description: str = ""
    line: int | None = None


@dataclass(frozen=True)
class RateLimits:
    """At most ``per_incident`` automated attempts per incident and ``global_`` overall per ``window``."""

    per_incident: int = 5
    global_: int = 20
    window: _dt.timedelta = _dt.timedelta(minutes=10)


@dataclass(frozen=True)
class IncidentPlan:
    """The loaded plan."""

    version: int
    name: str
    roles: tuple[Role, ...]
    severity: tuple[tuple[str, str], ...]
    playbooks: tuple[Playbook, ...]
    stop_topic: str
    drill_max_age: _dt.timedelta
    rate: RateLimits
    max_attempts: int = 3
    source: str = ""

    def severity_of(self, trigger: str) -> str:
        """The matrix severity of ``trigger`` (every trigger is in the matrix)."""
        return dict(self.severity)[trigger]

    def playbook(self, playbook_id: str) -> Playbook | None:
        """The playbook with ``playbook_id``, or None."""
        return next((p for p in self.playbooks if p.id == playbook_id), None)

    def role(self, role_id: str) -> Role | None:
        """The role with ``role_id``, or None."""
        return next((r for r in self.roles if r.id == role_id), None)


def _snake(node: Node, ctx: YamlContext, what: str) -> str:
    value = read_string(node, ctx, f"a snake_case {what}")
    if not is_snake_case(value):
        raise ctx.error(node, f"a snake_case {what} (a-z, 0-9, single underscores)", repr(value))
    return value


def _ros_name(node: Node, ctx: YamlContext, what: str) -> str:
    value = read_string(node, ctx, f"an absolute ROS {what} name")
    if not _ROS_NAME.fullmatch(value):
        raise ctx.error(node, f"an absolute ROS {what} name like /cell/safety_stop", repr(value))
    return value


def _choice(node: Node, ctx: YamlContext, choices: Sequence[str]) -> str:
    value = read_string(node, ctx, "one of " + ", ".join(choices))
    if value not in choices:
        raise ctx.error(node, "one of " + ", ".join(choices), repr(value))
    return value


def _optional_text(keys: dict[str, tuple[Node, Node]], name: str, ctx: YamlContext) -> str:
    return read_string(keys[name][1], ctx.child(name), f"a non-empty {name}").strip() if name in keys else ""


def _roles(node: Node, ctx: YamlContext) -> tuple[Role, ...]:
    entries = read_mapping(node, ctx, (), "a mapping of role id to name and contact", "role id")
    if not entries:
        raise ctx.error(node, "at least one role", "an empty mapping")
    roles = []
    for role_id, (key_node, value_node) in entries.items():
        rctx = ctx.child(role_id)
        if not is_snake_case(role_id):
            raise rctx.error(key_node, "a snake_case role id", repr(role_id))
        keys = read_mapping(value_node, rctx, _ROLE_KEYS, "a role mapping with name and contact")
        name = read_string(require_key(keys, "name", value_node, rctx)[1], rctx.child("name"), "a non-empty name")
        contact = read_string(require_key(keys, "contact", value_node, rctx)[1], rctx.child("contact"),
                              "a non-empty contact (phone, e-mail, pager)")
        roles.append(Role(role_id, name, contact, _optional_text(keys, "description", rctx)))
    return tuple(roles)


def _severity(node: Node, ctx: YamlContext) -> tuple[tuple[str, str], ...]:
    entries = read_mapping(node, ctx, TRIGGERS, "a mapping of trigger to severity", "trigger")
    for trigger in TRIGGERS:
        if trigger not in entries:
            raise ctx.child(trigger).error(node, f"a severity for every trigger ({', '.join(TRIGGERS)})", "nothing")
    return tuple((t, _choice(entries[t][1], ctx.child(t), SEVERITIES)) for t in TRIGGERS)


def _positive(node: Node, ctx: YamlContext, what: str) -> int:
    value = read_integer(node, ctx, f"a positive integer ({what})")
    if value < 1:
        raise ctx.error(node, f"a positive integer ({what})", str(value))
    return value


def _settings(node: Node, ctx: YamlContext) -> tuple[str, _dt.timedelta, RateLimits, int]:
    keys = read_mapping(node, ctx, _SETTINGS_KEYS, "a settings mapping with stop_topic and drill_max_age")
    stop_topic = _ros_name(require_key(keys, "stop_topic", node, ctx)[1], ctx.child("stop_topic"), "topic")
    drill_max_age = read_duration(require_key(keys, "drill_max_age", node, ctx)[1], ctx.child("drill_max_age"))
    rate = RateLimits()
    if "rate_limit" in keys:
        rnode, rctx = keys["rate_limit"][1], ctx.child("rate_limit")
        rkeys = read_mapping(rnode, rctx, _RATE_KEYS, "a rate_limit mapping with per_incident, global, window")
        rate = RateLimits(
            per_incident=_positive(require_key(rkeys, "per_incident", rnode, rctx)[1], rctx.child("per_incident"),
                                   "automated attempts per incident per window"),
            global_=_positive(require_key(rkeys, "global", rnode, rctx)[1], rctx.child("global"),
                              "automated attempts overall per window"),
            window=read_duration(require_key(rkeys, "window", rnode, rctx)[1], rctx.child("window")),
        )
    max_attempts = 3
    if "max_attempts" in keys:
        max_attempts = _positive(keys["max_attempts"][1], ctx.child("max_attempts"), "attempts per step")
    return stop_topic, drill_max_age, rate, max_attempts


def _step(node: Node, ctx: YamlContext, roles: set[str]) -> Step:
    keys = read_mapping(node, ctx, _STEP_KEYS, "a step mapping with an action")
    action = _choice(require_key(keys, "action", node, ctx)[1], ctx.child("action"), ACTIONS)
    owner = ""
    if "owner" in keys:
        owner = _snake(keys["owner"][1], ctx.child("owner"), "role id")
        if owner not in roles:
            raise ctx.child("owner").error(keys["owner"][1], "a role defined under roles (" + ", ".join(sorted(roles))
                                           + ")", repr(owner))
    if action in ("manual", "keystore_revoke") and not owner:
        # keystore_revoke is manual too: the keystore manager has no revoke service to call.
        raise ctx.child("owner").error(node, f"an owner for the {action} step (a role id)", "nothing")
    if action == "manual" and "description" not in keys:
        raise ctx.child("description").error(node, "a description of the manual step", "nothing")
    service = ""
    if "service" in keys:
        if action != "call_trigger":
            raise ctx.child("service").error(keys["service"][1], "service only on call_trigger steps", action)
        service = _ros_name(keys["service"][1], ctx.child("service"), "service")
    elif action == "call_trigger":
        raise ctx.child("service").error(node, "the std_srvs/Trigger service to call", "nothing")
    topic = ""
    if "topic" in keys:
        if action != "publish_stop":
            raise ctx.child("topic").error(keys["topic"][1], "topic only on publish_stop steps", action)
        topic = _ros_name(keys["topic"][1], ctx.child("topic"), "topic")
    return Step(action, owner, service, topic, _optional_text(keys, "description", ctx))


def _playbook(node: Node, ctx: YamlContext, roles: set[str]) -> Playbook:
    keys = read_mapping(node, ctx, _PLAYBOOK_KEYS, "a playbook mapping with id, trigger, owner, steps")
    playbook_id = _snake(require_key(keys, "id", node, ctx)[1], ctx.child("id"), "playbook id")
    trigger = _choice(require_key(keys, "trigger", node, ctx)[1], ctx.child("trigger"), TRIGGERS)
    owner_node = require_key(keys, "owner", node, ctx)[1]
    owner = _snake(owner_node, ctx.child("owner"), "role id")
    if owner not in roles:
        raise ctx.child("owner").error(owner_node, "a role defined under roles (" + ", ".join(sorted(roles)) + ")",
                                       repr(owner))
    auto_close = read_boolean(keys["auto_close"][1], ctx.child("auto_close")) if "auto_close" in keys else False
    controls: list[str] = []
    if "controls" in keys:
        if trigger != "control_error":
            raise ctx.child("controls").error(keys["controls"][1], "controls only on control_error playbooks", trigger)
        cctx = ctx.child("controls")
        for index, item in enumerate(read_sequence(keys["controls"][1], cctx, "a list of control ids")):
            control = _snake(item, cctx.item(index), "control id")
            if control in controls:
                raise cctx.item(index).error(item, "each control id once", repr(control))
            controls.append(control)
    steps_node = require_key(keys, "steps", node, ctx)[1]
    sctx = ctx.child("steps")
    items = read_sequence(steps_node, sctx, "a non-empty list of steps")
    if not items:
        raise sctx.error(steps_node, "a non-empty list of steps", "an empty list")
    steps = tuple(_step(item, sctx.item(i), roles) for i, item in enumerate(items))
    return Playbook(playbook_id, trigger, owner, auto_close, steps, tuple(controls),
                    _optional_text(keys, "description", ctx), line_of(node))


def load_plan_text(text: str, source: str) -> IncidentPlan:
    """Parse and validate plan YAML ``text``; ``source`` names it in errors.

    :raises InputError: on YAML syntax errors and anything the version 1 schema does not allow.
    """
    doc = read_document(text, source, _TOP_KEYS, "an incident response plan mapping with version, roles, "
                        "severity, settings, playbooks", PLAN_VERSION)
    root, keys, ctx = doc.root, doc.keys, doc.ctx
    name = read_string(require_key(keys, "name", root, ctx)[1], ctx.child("name"), "a non-empty plan name")
    roles = _roles(require_key(keys, "roles", root, ctx)[1], ctx.child("roles"))
    severity = _severity(require_key(keys, "severity", root, ctx)[1], ctx.child("severity"))
    stop_topic, drill_max_age, rate, max_attempts = _settings(require_key(keys, "settings", root, ctx)[1],
                                                              ctx.child("settings"))
    role_ids = {r.id for r in roles}
    playbooks = read_unique_items(require_key(keys, "playbooks", root, ctx)[1], ctx.child("playbooks"),
                                  lambda item, ictx: _playbook(item, ictx, role_ids), "playbook")
    return IncidentPlan(PLAN_VERSION, name, roles, severity, tuple(playbooks), stop_topic, drill_max_age, rate,
                        max_attempts, source)


def load_plan(path: Path | str) -> IncidentPlan:
    """Read and validate the plan at ``path`` (UTF-8 YAML, schema version 1).

    :raises InputError: when the file cannot be read or is not a valid plan.
    """
    return load_plan_text(read_yaml_file(path, "incident response plan"), str(path))


def _finding(level: Level, message: str, values: tuple[tuple[str, str], ...] = ()) -> Finding:
    return Finding(check=INCIDENT_PLAN, subject=PLAN_SUBJECT, level=level, message=message, values=values)


def plan_findings(plan: IncidentPlan, now: _dt.datetime,
                  attestations: Sequence[Attestation] | None = None) -> list[Finding]:
    """The ``incident_plan`` Finding of a *valid* plan: ERROR unless every critical trigger has a
    playbook with an owner and (when ``attestations`` are given) the drill attestation is dated
    within ``settings.drill_max_age`` of ``now``.

    The drill attestation's presence and expiry are also required by the controls catalog; the
    age check here is the plan's own, stricter freshness rule.
    """
    problems: list[str] = []
    critical = [t for t, s in plan.severity if s == "critical"]
    for trigger in critical:
        books = [p for p in plan.playbooks if p.trigger == trigger]
        if not books:
            problems.append(f"critical trigger {trigger} has no playbook")
        elif not any(p.owner and plan.role(p.owner) is not None for p in books):
            problems.append(f"critical trigger {trigger} has no playbook with an owner")
    if attestations is not None:
        drill = next((a for a in attestations if a.id == DRILL_ATTESTATION), None)
        if drill is None:
            problems.append(f"no {DRILL_ATTESTATION} attestation")
        elif now - drill.valid_from > plan.drill_max_age:
            problems.append(f"last drill {drill.date.isoformat()} is older than {plan.drill_max_age.days} days")
        elif now < drill.valid_from:
            problems.append(f"drill attestation dated in the future ({drill.date.isoformat()})")
    values = (("critical_triggers", ",".join(critical)), ("playbooks", str(len(plan.playbooks))),
              ("evidence", plan.source))
    if problems:
        return [_finding(Level.ERROR, "; ".join(problems), values)]
    return [_finding(Level.OK, f"plan {plan.name}: {len(plan.playbooks)} playbooks, critical triggers covered",
                     values)]


def check_plan_file(path: Path | str, now: _dt.datetime,
                    attestations: Sequence[Attestation] | None = None) -> tuple[IncidentPlan | None, list[Finding]]:
    """Load the plan at ``path`` and judge it; an invalid plan is an ERROR Finding, never an exception."""

    try:
        plan = load_plan(path)
    except InputError as exc:
        return None, [_finding(Level.ERROR, f"invalid incident response plan: {exc}", (("evidence", str(path)),))]
    return plan, plan_findings(plan, now, attestations)
