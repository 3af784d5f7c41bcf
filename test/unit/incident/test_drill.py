"""Drills: dry-run timeline, the attestation written (others kept), nothing else in the cell changed."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
from pathlib import Path

import pytest

from cobot_security.errors import InputError
from cobot_security.incident.drill import run_drill
from cobot_security.incident.plan import DRILL_ATTESTATION, plan_findings
from cobot_security.keystore.store import init_keystore
from cobot_security.policy.load import load_policy
from cobot_security.posture.attestations import load_attestations
from cobot_security.resources import shipped_file
from cobot_security.status import Level


def _digest(root: Path) -> dict[str, str]:
    out = {}
    for current, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(current) / name
            rel = str(path.relative_to(root))
            if path.is_symlink():
                out[rel] = "link:" + os.readlink(path)
            elif path.is_file():
                out[rel] = hashlib.sha256(path.read_bytes()).hexdigest() + oct(path.stat().st_mode)
            else:
                out[rel] = "dir" + oct(path.stat().st_mode)
    return out


@pytest.fixture
def cell(tmp_path: Path, now) -> dict[str, Path]:
    policy_path = tmp_path / "cell" / "workcell.yaml"
    policy_path.parent.mkdir()
    shutil.copy(shipped_file("policies/workcell.yaml"), policy_path)
    shutil.copy(shipped_file("policies/attestations.yaml"), tmp_path / "cell" / "attestations.yaml")
    keystore = init_keystore(tmp_path / "keystore", load_policy(policy_path), now).layout.root
    return {"dir": policy_path.parent, "keystore": keystore, "attestations": tmp_path / "cell" / "attestations.yaml"}


def test_drill_writes_the_attestation_and_changes_nothing_else(plan, store, cell, now) -> None:
    before_keystore, before_cell = _digest(cell["keystore"]), _digest(cell["dir"])
    others_before = [a for a in load_attestations(cell["attestations"]) if a.id != DRILL_ATTESTATION]
    header = cell["attestations"].read_text().splitlines()[0]

    result = run_drill(plan, "rogue", store, cell["attestations"], now, "Tester", valid_days=30)

    assert _digest(cell["keystore"]) == before_keystore
    after_cell = _digest(cell["dir"])
    changed = {k for k in before_cell.keys() | after_cell.keys() if before_cell.get(k) != after_cell.get(k)}
    assert changed == {"attestations.yaml"}
    attestations = load_attestations(cell["attestations"])
    assert [a for a in attestations if a.id != DRILL_ATTESTATION] == [
        a.__class__(**{**a.__dict__, "line": b.line}) for a, b in zip(others_before, attestations)]
    drill = next(a for a in attestations if a.id == DRILL_ATTESTATION)
    assert drill.date == now.date() and drill.expires == now.date() + dt.timedelta(days=30)
    assert drill.attested_by == "Tester" and result.incident.id in drill.evidence
    assert cell["attestations"].read_text().splitlines()[0] == header  # leading comments kept
    # the timeline: every automated action dry-run, manual steps assigned, then closed
    incident = store.get(result.incident.id)
    assert incident.drill and incident.status == "closed"
    assert [(e.action, e.result) for e in incident.timeline if e.step is not None] == [
        ("publish_stop", "dry_run"), ("call_trigger", "dry_run"), ("manual", "assigned")]
    assert "would publish" in incident.timeline[1].detail
    # and the plan is now judged drilled
    assert plan_findings(plan, now, attestations)[0].level == Level.OK


def test_second_drill_replaces_the_entry(plan, store, cell, now) -> None:
    run_drill(plan, "rogue", store, cell["attestations"], now, "Tester")
    run_drill(plan, "tamper", store, cell["attestations"], now + dt.timedelta(days=1), "Tester")
    drills = [a for a in load_attestations(cell["attestations"]) if a.id == DRILL_ATTESTATION]
    assert len(drills) == 1 and "tamper" in drills[0].statement
    assert len(store.list()) == 2


def test_unknown_playbook_writes_nothing(plan, store, cell, now) -> None:
    before = cell["attestations"].read_bytes()
    with pytest.raises(InputError, match="playbook: expected one of rogue"):
        run_drill(plan, "nope", store, cell["attestations"], now, "Tester")
    assert cell["attestations"].read_bytes() == before
    assert store.list() == []
