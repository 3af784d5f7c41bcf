"""From posture results and health findings to incidents and the actions they owe (no ROS).

:func:`detect_triggers` is pure: which playbook triggers fire, for which subject.  The
:class:`IncidentEngine` opens one incident per trigger + subject while it is open (dedupe on
disk, so restarts do not duplicate), auto-closes incidents whose playbook allows it once the
trigger clears, and returns the automated actions that are due.  An action recorded ``done`` is
never due again (idempotent); attempts are rate-limited per incident and globally, counted from
the timelines on disk so that a restart does not reset the budget.  The caller (the supervisor)
executes the actions and reports their outcome with :meth:`IncidentEngine.record`.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cobot_security.checks import (
    CERT_CHAIN,
    GRAPH_CONFORMANCE,
    KEYSTORE_INTEGRITY,
    NETWORK_RULESET,
    REPORTER_LIVENESS,
)
from cobot_security.clock import iso_utc
from cobot_security.incident.incidents import (
    Incident,
    IncidentStore,
    TimelineEntry,
    close_incident,
    new_incident_id,
)
from cobot_security.incident.plan import IncidentPlan, Step
from cobot_security.posture.evaluate import ControlResult
from cobot_security.status import Finding, Level

__all__ = ["DueAction", "EngineUpdate", "IncidentEngine", "TriggerEvent", "detect_triggers", "rate_allows"]

#: Timeline results that count as an attempt of an automated action (for rate limits / max_attempts).
ATTEMPT_RESULTS = frozenset({"done", "failed"})
#: Results after which a step is never executed again.
FINAL_RESULTS = frozenset({"done", "assigned", "dry_run", "gave_up"})


@dataclass(frozen=True)
class TriggerEvent:
    """One firing trigger: the playbook, the subject it concerns, why, and the statuses involved."""

    playbook: str
    trigger: str
    subject: str
    reason: str
    subjects: tuple[str, ...]
    evidence: tuple[str, ...]

    @property
    def key(self) -> str:
        """Dedupe key of the incident it opens: ``<trigger>:<subject>``."""
        return f"{self.trigger}:{self.subject}"


@dataclass(frozen=True)
class DueAction:
    """An automated step the supervisor should execute now."""

    incident_id: str
    step: int
    action: str
    target: str


@dataclass(frozen=True)
class EngineUpdate:
    """What one evaluation changed: incidents opened and closed, and the actions now due."""

    opened: tuple[Incident, ...]
    closed: tuple[Incident, ...]
    due: tuple[DueAction, ...]
    events: tuple[TriggerEvent, ...]
    #: Triggers that would have opened an incident but the opening limit of the window was reached.
    suppressed: tuple[TriggerEvent, ...] = ()


def _subjects(finding: Finding) -> tuple[str, ...]:
    found = [finding.subject]
    for key in ("enclave", "reporter", "host"):
        value = finding.value(key)
        if value and value not in found:
            found.append(value)
    return tuple(found)


def _finding_fires(trigger: str, finding: Finding) -> bool:
    if trigger == "unknown_node":
        return (finding.check == GRAPH_CONFORMANCE and finding.level == Level.ERROR
                and "not in the policy" in finding.message)
    if trigger == "integrity_violation":
        return finding.check == KEYSTORE_INTEGRITY and finding.level == Level.ERROR
    if trigger == "revoked_identity_seen":
        return finding.check == CERT_CHAIN and finding.level == Level.ERROR and "revoked" in finding.message.lower()
    if trigger == "segmentation_drift":
        return finding.check == NETWORK_RULESET and finding.level == Level.ERROR
    if trigger == "stale_reporter":
        return finding.check == REPORTER_LIVENESS and finding.level in (Level.STALE, Level.ERROR)
    return False


def detect_triggers(plan: IncidentPlan, results: Sequence[ControlResult],
                    findings: Sequence[Finding]) -> list[TriggerEvent]:
    """Every (playbook, subject) whose trigger fires in this evaluation, in plan order.

    ``control_error``: a control result at ERROR (limited to the playbook's ``controls`` when
    listed); the others read the health findings (see docs/incident_response.md).
    """
    events: list[TriggerEvent] = []
    seen: set[str] = set()
    for playbook in plan.playbooks:
        candidates: list[TriggerEvent] = []
        if playbook.trigger == "control_error":
            for result in results:
                if result.level == Level.ERROR and (not playbook.controls or result.control_id in playbook.controls):
                    candidates.append(TriggerEvent(playbook.id, playbook.trigger, "/" + result.control_id,
                                                   f"control {result.control_id} ERROR: {result.reason}",
                                                   ("/" + result.control_id,),
                                                   (result.status_name,) + tuple(result.evidence)))
        else:
            for finding in findings:
                if _finding_fires(playbook.trigger, finding):
                    candidates.append(TriggerEvent(playbook.id, playbook.trigger, finding.subject,
                                                   f"{finding.name}: {finding.level.name} {finding.message}",
                                                   _subjects(finding), (finding.name,)))
        for event in candidates:
            if event.key not in seen:  # the first playbook of a trigger wins for one subject
                seen.add(event.key)
                events.append(event)
    return events


def _opened_after(incident: Incident, since: _dt.datetime) -> bool:
    """True when ``incident`` opened after ``since`` (an unreadable time counts as recent: fail closed)."""
    try:
        return _dt.datetime.fromisoformat(incident.opened_at) > since
    except (TypeError, ValueError):
        return True


def _attempts(incident: Incident, since: _dt.datetime) -> int:
    return sum(1 for e in incident.timeline if e.event == "action" and e.result in ATTEMPT_RESULTS
               and _dt.datetime.fromisoformat(e.time) > since)


def rate_allows(plan: IncidentPlan, incidents: Iterable[Incident], incident: Incident, now: _dt.datetime) -> bool:
    """True while ``incident`` and all incidents together stay under the plan's attempt budget."""
    since = now - plan.rate.window
    if _attempts(incident, since) >= plan.rate.per_incident:
        return False
    return sum(_attempts(i, since) for i in incidents) < plan.rate.global_


def _step_state(incident: Incident, index: int) -> tuple[bool, int, str]:
    """(final, attempts, last result) of step ``index``."""
    entries = [e for e in incident.timeline if e.step == index]
    final = any(e.result in FINAL_RESULTS for e in entries)
    attempts = sum(1 for e in entries if e.result == "failed")
    return final, attempts, entries[-1].result if entries else ""


def manual_entry(plan: IncidentPlan, step: Step, index: int, now: _dt.datetime) -> TimelineEntry:
    """The ``assigned`` entry of a manual step (``keystore_revoke`` included: no service exists)."""
    role = plan.role(step.owner)
    who = f"{step.owner} ({role.name}, {role.contact})" if role is not None else step.owner
    if step.action == "keystore_revoke":
        what = ("revoke the affected enclave: run `cobot-security revoke ENCLAVE` "
                "(planned manual step: the keystore_manager has no revoke service)")
    else:
        what = step.description
    return TimelineEntry(iso_utc(now), "manual", "assigned", f"{who}: {what}", index, step.action)


class IncidentEngine:
    """Opens, closes and drives incidents of ``plan`` stored in ``store``.

    At most ``max_opened`` incidents are opened per ``open_window`` and ``max_per_evaluation`` per
    call of :meth:`evaluate` (None: no limit), so a flood of triggers can neither fill the disk nor
    stall one evaluation writing evidence; the triggers over a limit are returned as ``suppressed``
    (they open in a later evaluation, when there is room, if they still fire).
    """

    def __init__(self, plan: IncidentPlan, store: IncidentStore, max_opened: int | None = None,
                 open_window: _dt.timedelta = _dt.timedelta(minutes=10),
                 max_per_evaluation: int | None = None) -> None:
        self.plan = plan
        self.store = store
        self.max_opened = max_opened
        self.open_window = open_window
        self.max_per_evaluation = max_per_evaluation
        self._in_flight: set[tuple[str, int]] = set()

    def _room(self, incidents: Sequence[Incident], now: _dt.datetime) -> int | None:
        """How many incidents may open in this evaluation (None: unlimited)."""
        room = self.max_per_evaluation
        if self.max_opened is not None:
            since = now - self.open_window
            recent = sum(1 for i in incidents if not i.drill and _opened_after(i, since))
            room = max(0, self.max_opened - recent) if room is None else min(room, max(0, self.max_opened - recent))
        return room

    def _open(self, event: TriggerEvent, now: _dt.datetime) -> Incident | None:
        playbook = self.plan.playbook(event.playbook)
        assert playbook is not None
        incident = Incident(
            id=new_incident_id(event.key, now), key=event.key, playbook=playbook.id, trigger=event.trigger,
            severity=self.plan.severity_of(event.trigger), subjects=event.subjects, opened_at=iso_utc(now),
            reason=event.reason, evidence=event.evidence,
            timeline=(TimelineEntry(iso_utc(now), "opened", "done", event.reason),),
        )
        for index, step in enumerate(playbook.steps):
            if not step.automated:
                incident = incident.with_entry(manual_entry(self.plan, step, index, now))
        return self.store.open_incident(incident)

    def evaluate(self, results: Sequence[ControlResult], findings: Sequence[Finding],
                 now: _dt.datetime) -> EngineUpdate:
        """Open incidents for new triggers, auto-close cleared ones, and list the due actions.

        :raises KeystoreError: the incident directory cannot be read or written.
        """
        events = detect_triggers(self.plan, results, findings)
        stored = self.store.list()
        open_keys = {i.key for i in stored if i.is_open and not i.drill}
        new = [e for e in events if e.key not in open_keys]
        room = self._room(stored, now)
        suppressed = new[room:] if room is not None else []
        new = new[:room] if room is not None else new
        opened = [inc for e in new for inc in [self._open(e, now)] if inc is not None]
        active = {e.key for e in events}
        closed = []
        for incident in self.store.list():
            playbook = self.plan.playbook(incident.playbook)
            if (incident.is_open and not incident.drill and incident.key not in active
                    and playbook is not None and playbook.auto_close):
                closed.append(close_incident(self.store, incident.id, "trigger cleared", now, by="auto_close"))
        return EngineUpdate(tuple(opened), tuple(closed), tuple(self.due_actions(now)), tuple(events),
                            tuple(suppressed))

    def due_actions(self, now: _dt.datetime) -> list[DueAction]:
        """Automated steps of open incidents not yet done, not in flight, within the rate limits.

        A step over the rate limit gets one ``rate_limited`` timeline entry (not one per tick);
        a step that failed ``max_attempts`` times gets ``gave_up`` and is not tried again.
        """
        incidents = self.store.list()
        due: list[DueAction] = []
        for incident in incidents:
            playbook = self.plan.playbook(incident.playbook)
            if not incident.is_open or incident.drill or playbook is None:
                continue
            for index, step in enumerate(playbook.steps):
                if not step.automated or (incident.id, index) in self._in_flight:
                    continue
                final, attempts, last = _step_state(incident, index)
                if final:
                    continue
                if attempts >= self.plan.max_attempts:
                    incident = self.record(incident.id, index, step.action, "gave_up",
                                           f"{attempts} failed attempts", now)
                    continue
                if not rate_allows(self.plan, incidents, incident, now):
                    if last != "rate_limited":
                        incident = self.record(incident.id, index, step.action, "rate_limited",
                                               "attempt budget of the window used up", now)
                    continue
                due.append(DueAction(incident.id, index, step.action, step.target(self.plan)))
                self._in_flight.add((incident.id, index))
                # count this attempt against the budget before the next step is considered
                incident = incident.with_entry(TimelineEntry(iso_utc(now), "action", "done", "", index, step.action))
                incidents = [incident if i.id == incident.id else i for i in incidents]
        return due

    def record(self, incident_id: str, step: int, action: str, result: str, detail: str,
               now: _dt.datetime) -> Incident:
        """Append a step's outcome to the timeline (``requested`` keeps it in flight)."""
        if result != "requested":
            self._in_flight.discard((incident_id, step))
        return self.store.update(incident_id, lambda i: i.with_entry(
            TimelineEntry(iso_utc(now), "action", result, detail, step, action)))

    def release(self, incident_id: str, step: int) -> None:
        """Forget an in-flight step without recording (e.g. its service is not up yet)."""
        self._in_flight.discard((incident_id, step))
