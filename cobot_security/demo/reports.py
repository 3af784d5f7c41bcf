"""The demo's report: the supervisor's posture with the scenario, per-step snapshots and pictures.

Written as JSON (``scenario``, ``scenario_steps``, ``score_timeline``, ``events``,
``certificate_days`` beside the supervisor's report), Markdown and one self-contained HTML page
with the score over the scenario's timeline and every enclave's certificate days left.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from cobot_security.clock import days_left, utc_now
from cobot_security.keystore.store import Keystore
from cobot_security.policy.model import WorkcellPolicy
from cobot_security.posture.report import render_html, render_report, report_from_dict

__all__ = ["write_reports"]

TITLE = "Secure-workcell demo: cell security posture"


class ScenarioRecord(Protocol):
    """What the runner recorded of the scenario (its DemoOutcome)."""

    timeline: list[str]
    scores: list[tuple[float, int]]
    events: list[tuple[float, str]]
    steps: list[dict[str, object]]


def certificate_days(keystore: Path) -> list[tuple[str, int]]:
    """(enclave, whole days left) of every readable enclave certificate, by path."""
    now = utc_now()
    return [(info.path, days_left(info.not_after, now)) for info in Keystore.open(keystore).list_enclaves()]


def write_reports(work_dir: Path, answer: str | None, outcome: ScenarioRecord, policy: WorkcellPolicy,
                  keystore: Path, say: Callable[[str], None]) -> dict[str, Path]:
    """Write the supervisor's get_report ``answer`` with the scenario as JSON, Markdown and HTML."""
    if answer is None:
        say("the supervisor did not answer /supervisor/get_report: no report written")
        return {}
    body = json.loads(answer)
    report = report_from_dict(body)
    certificates = certificate_days(keystore)
    paths = {"json": work_dir / "posture.json", "markdown": work_dir / "posture.md", "html": work_dir / "posture.html"}
    body.update(scenario=outcome.timeline, scenario_steps=outcome.steps,
                score_timeline=[{"t_s": t, "score": s} for t, s in outcome.scores],
                events=[{"t_s": t, "title": title} for t, title in outcome.events],
                certificate_days={enclave: days for enclave, days in certificates})
    paths["json"].write_text(json.dumps(body, indent=2) + "\n")
    paths["markdown"].write_text(render_report(report, "markdown") + "\n## Scenario\n\n"
                                 + "".join(f"1. {line}\n" for line in outcome.timeline))
    paths["html"].write_text(render_html(report, TITLE, tuple(outcome.timeline), scores=outcome.scores,
                                         events=outcome.events, certificate_days=certificates,
                                         renew_before_days=policy.lifetimes.renew_before.days))
    say("reports: " + ", ".join(str(p) for p in paths.values()))
    incidents = body.get("incidents_open") or []
    if incidents:
        say(f"the supervisor's playbooks opened {len(incidents)} incident(s): "
            f"cobot-security incident list --keystore {work_dir / 'scenario-keystore'}")
    return paths
