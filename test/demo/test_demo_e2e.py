"""The README's main job end to end: `cobot-security demo` as a user runs it (real processes).

It must exit 0, leave no process behind, and write a report whose HTML shows the control table
and the score chart and whose JSON records each scenario step's effect: in the healthy step the
only red controls are those that need DDS Security (security_env; the PyPI rclpy has none), and
each event turns exactly its own control red.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from lxml import html

from cobot_security.incident.incidents import IncidentStore

REPO = Path(__file__).resolve().parent.parent.parent


def _cli() -> list[str]:
    script = Path(sys.executable).parent / "cobot-security"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "cobot_security.cli.main"]


def _leftovers(marker: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if marker in cmdline:
                found.append(cmdline)
    return found


def test_demo_runs_the_scenario_and_writes_the_report(tmp_path: Path, domain_id: int) -> None:
    work = tmp_path / "work"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROS_")}
    proc = subprocess.run(
        [*_cli(), "demo", "--keystore", str(tmp_path / "keystore"), "--work-dir", str(work),
         "--duration", "60", "--domain-id", str(domain_id)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert _leftovers(str(work)) == []

    # The proof ran first and passed.
    assert "0 failure(s)" in proc.stdout
    # The HTML report is one self-contained page with the control table.
    page = html.fromstring((work / "posture.html").read_bytes())
    rows = page.xpath("//table/tbody/tr")
    assert len(rows) == 11
    assert not page.xpath("//script | //link[@rel='stylesheet'] | //img[starts-with(@src, 'http')]")
    assert "IEC 62443-3-3 SR 5.1" in page.text_content()
    # The score over the scenario's timeline, its six events marked, and the certificates' days left.
    charts = page.xpath("//svg")
    assert len(charts) == 2
    assert len(charts[0].xpath(".//polyline")) == 1 and len(charts[0].xpath(".//title")) == 6

    report = json.loads((work / "posture.json").read_text())
    steps = {step["key"]: step for step in report["scenario_steps"]}
    assert list(steps) == ["healthy", "renewal_window", "rotation", "revocation", "rogue_node", "tamper"]
    # Healthy: every control software can evidence here is OK; red only where DDS Security is missing.
    healthy = steps["healthy"]
    red = {c for c, level in healthy["levels"].items() if level in ("ERROR", "STALE")}
    assert red == {"encryption_in_transit", "strong_authentication"}, healthy["reasons"]
    for control in red:
        assert "cobot_security/security_env/" in healthy["reasons"][control], healthy["reasons"][control]
    assert "network check: OK" in proc.stdout  # the demo ran as root (CI, scripts/test.sh): netns proof
    # Each event turns exactly its own control red (and the renewal window only warns).
    previous = red
    for key in ("renewal_window", "rotation", "revocation", "rogue_node", "tamper"):
        now_red = {c for c, level in steps[key]["levels"].items() if level in ("ERROR", "STALE")}
        assert now_red - previous == set(steps[key]["turns_red"]), (key, steps[key]["reasons"])
        assert previous <= now_red, key  # nothing heals by itself in this scenario
        previous = now_red
    assert steps["renewal_window"]["levels"]["per_node_identity"] == "WARN"
    assert steps["rotation"]["levels"]["per_node_identity"] == "OK"
    assert [s["turns_red"] for s in report["scenario_steps"][3:]] == [
        ["per_node_identity"], ["per_node_authorization"], ["software_integrity"]]
    # The attestations that made the healthy step green were the demo's own, marked as such.
    attestations = (work / "demo-attestations.yaml").read_text()
    assert attestations.count("statement: 'DEMO STATEMENT, not evidence:") == 7
    controls = {c["control"]: c for c in report["controls"]}
    timeline = "\n".join(report["scenario"])
    # Rotation with a rolling restart of exactly the rotated enclave's node.
    assert "rolling restart: /cell/gripper" in timeline
    assert "rolling restart: /cell/arm_driver" not in timeline
    # Revocation, rogue node and tampering each left their mark on the final posture.
    assert controls["per_node_identity"]["level"] == "ERROR"
    assert "revoked" in controls["per_node_identity"]["reason"]
    assert controls["per_node_authorization"]["level"] == "ERROR"
    assert "/cell/rogue_laptop is not in the policy" in controls["per_node_authorization"]["reason"]
    assert controls["software_integrity"]["level"] == "ERROR"
    assert "modified" in controls["software_integrity"]["reason"]
    # Honest gap: the PyPI rclpy runs without DDS Security.
    assert "ROS_SECURITY_ENABLE" in controls["encryption_in_transit"]["reason"]
    assert (work / "posture.md").read_text().count("|") > 20
    # The supervisor's playbooks opened incidents for the scenario's events, each once.
    incidents = IncidentStore(work / "scenario-keystore" / ".cobot_security" / "incidents").list()
    triggers = [incident.trigger for incident in incidents]
    assert "unknown_node" in triggers and "integrity_violation" in triggers
    assert triggers.count("unknown_node") == 1
    assert set(report["incidents_open"]) >= {i.id for i in incidents if i.trigger == "unknown_node"}
