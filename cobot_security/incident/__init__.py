"""Incident response: the plan as data, incidents and their engine, evidence bundles, drills."""

from cobot_security.incident.engine import (
    DueAction,
    EngineUpdate,
    IncidentEngine,
    TriggerEvent,
    detect_triggers,
)
from cobot_security.incident.incidents import (
    Incident,
    IncidentStore,
    TimelineEntry,
    close_incident,
)
from cobot_security.incident.plan import IncidentPlan, load_plan, plan_findings

__all__ = [
    "DueAction", "EngineUpdate", "Incident", "IncidentEngine", "IncidentPlan", "IncidentStore", "TimelineEntry",
    "TriggerEvent", "close_incident", "detect_triggers", "load_plan", "plan_findings",
]
