"""Drills: run a playbook on a simulated trigger with every action in dry run, then attest it.

Nothing in the cell is touched: no topic is published, no service called, the keystore is not
read or written.  The drill's timeline is recorded as a ``drill-…`` incident (closed at once), and
the ``incident_response_drill`` attestation is written into the attestations file: written aside
and renamed, every other entry kept, the file's leading comment block kept (comments between
entries are not: the body is re-emitted from the parsed entries).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from cobot_security import atomic
from cobot_security.clock import iso_utc
from cobot_security.errors import InputError, KeystoreError
from cobot_security.incident.engine import manual_entry
from cobot_security.incident.incidents import (
    Incident,
    IncidentStore,
    TimelineEntry,
    new_incident_id,
)
from cobot_security.incident.plan import DRILL_ATTESTATION, IncidentPlan
from cobot_security.posture.attestations import Attestation, load_attestations_text
from cobot_security.yaml_source import read_yaml_file

__all__ = ["DrillResult", "run_drill", "write_attestation"]

#: Default validity of the drill attestation.
DEFAULT_VALID_DAYS = 180


@dataclass(frozen=True)
class DrillResult:
    """The drill incident and the attestation written."""

    incident: Incident
    attestation: Attestation


def _dry_run_detail(plan: IncidentPlan, action: str, target: str) -> str:
    return {
        "publish_stop": f"would publish a safety-stop request (std_msgs/String) on {target}",
        "call_trigger": f"would call std_srvs/Trigger {target}",
        "keystore_rotate": f"would call std_srvs/Trigger {target} (keystore_manager rotation)",
        "snapshot_evidence": "would snapshot the posture and the health messages involved",
    }.get(action, action)


def simulate_playbook(plan: IncidentPlan, playbook_id: str, now: _dt.datetime) -> Incident:
    """The drill incident of ``playbook_id``: opened, every step dry-run or assigned, closed.

    :raises InputError: the plan has no such playbook.
    """
    playbook = plan.playbook(playbook_id)
    if playbook is None:
        raise InputError(plan.source, "playbook", "one of " + ", ".join(p.id for p in plan.playbooks),
                         repr(playbook_id))
    key = f"{playbook.trigger}:/drill/{playbook.id}"
    incident = Incident(
        id=new_incident_id(key, now, drill=True), key=key, playbook=playbook.id, trigger=playbook.trigger,
        severity=plan.severity_of(playbook.trigger), subjects=("/drill",), opened_at=iso_utc(now),
        reason=f"drill: simulated {playbook.trigger} trigger", drill=True,
        timeline=(TimelineEntry(iso_utc(now), "opened", "done", f"drill: simulated {playbook.trigger} trigger"),),
    )
    for index, step in enumerate(playbook.steps):
        if step.automated:
            entry = TimelineEntry(iso_utc(now), "action", "dry_run",
                                  _dry_run_detail(plan, step.action, step.target(plan)),
                                  index, step.action)
        else:
            entry = manual_entry(plan, step, index, now)
        incident = incident.with_entry(entry)
    closing = TimelineEntry(iso_utc(now), "closed", "done", "drill complete")
    return replace(incident, status="closed", closed_at=iso_utc(now), close_note="drill").with_entry(closing)


def _entry_dict(a: Attestation) -> dict[str, object]:
    return {"id": a.id, "statement": a.statement, "attested_by": a.attested_by, "date": a.date,
            "expires": a.expires, "evidence": a.evidence}


def write_attestation(path: Path, attestation: Attestation) -> None:
    """Add or replace ``attestation`` (by id) in the attestations file at ``path``; others kept.

    A missing file is created.  The result is validated before it replaces the file.

    :raises InputError: the existing file is invalid.
    :raises KeystoreError: the file cannot be written.
    """
    path = Path(path)
    header = ""
    entries: list[Attestation] = []
    if path.exists():
        text = read_yaml_file(path, "attestations file")
        entries = list(load_attestations_text(text, str(path)))
        lines = text.splitlines(keepends=True)
        header = "".join(line for line in _leading_comments(lines))
    entries = [a for a in entries if a.id != attestation.id] + [attestation]
    body = yaml.safe_dump({"version": 1, "attestations": [_entry_dict(a) for a in entries]},
                          sort_keys=False, allow_unicode=True, width=100)
    new_text = header + body
    load_attestations_text(new_text, str(path))  # never write what we could not read back
    try:
        atomic.write_bytes_atomic(path, new_text.encode("utf-8"), 0o644)
    except OSError as exc:
        raise KeystoreError(path, f"cannot write the attestations: {exc.strerror or exc}") from None


def _leading_comments(lines: list[str]) -> list[str]:
    kept = []
    for line in lines:
        if line.startswith("#") or not line.strip():
            kept.append(line)
        else:
            break
    return kept


def run_drill(plan: IncidentPlan, playbook_id: str, store: IncidentStore, attestations: Path,
              now: _dt.datetime, attested_by: str, valid_days: int = DEFAULT_VALID_DAYS) -> DrillResult:
    """Simulate ``playbook_id``, store the drill incident and write the drill attestation.

    :raises InputError: unknown playbook, ``valid_days`` < 1 or an invalid attestations file.
    :raises KeystoreError: the incident or the attestations cannot be written.
    """
    if valid_days < 1:
        raise InputError(None, "--valid-days", "a positive number of days", str(valid_days))
    incident = simulate_playbook(plan, playbook_id, now)
    today = now.astimezone(_dt.timezone.utc).date()
    attestation = Attestation(
        id=DRILL_ATTESTATION,
        statement=f"Incident response drill of playbook {playbook_id} ({incident.trigger}) held; every "
                  "automated action ran in dry run and manual steps were assigned to their owners.",
        attested_by=attested_by,
        date=today,
        expires=today + _dt.timedelta(days=valid_days),
        evidence=f"drill incident {incident.id} in {store.directory}",
    )
    # Validate the attestations file before anything is written.
    if Path(attestations).exists():
        load_attestations_text(read_yaml_file(attestations, "attestations file"), str(attestations))
    store.save(incident)
    write_attestation(Path(attestations), attestation)
    return DrillResult(incident, attestation)
