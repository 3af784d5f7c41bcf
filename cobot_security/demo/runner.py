"""The secure-workcell demo (the README's main job): keystore, DDS Security proof, the security
stack and the example cell as real rclpy processes, a scripted scenario, a live posture table and
a report in Markdown, JSON and HTML.  This module is an adapter: every decision it shows is made
by the package's core and nodes."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from cobot_security.clock import utc_now
from cobot_security.dds.report_text import format_report
from cobot_security.dds.verify import VerifyReport, verify_keystore
from cobot_security.demo.console import render_view
from cobot_security.demo.evidence import gather_evidence
from cobot_security.demo.processes import ProcessGroup
from cobot_security.demo.reports import write_reports
from cobot_security.demo.scenario import STEPS, Step
from cobot_security.keystore.evidence import record_verify_result
from cobot_security.keystore.layout import KeystoreLayout
from cobot_security.keystore.revocation import refresh_crl, revoke_enclave
from cobot_security.keystore.store import Keystore, init_keystore
from cobot_security.launch_plan.cell import demo_node_entries
from cobot_security.launch_plan.node_spec import secure_node_spec
from cobot_security.middleware.zenoh_render import default_zenoh_dir, render_zenoh
from cobot_security.nodes.demo_monitor import DemoMonitor
from cobot_security.policy.export import dump_policy_yaml
from cobot_security.policy.load import load_policy
from cobot_security.policy.model import ZENOH, WorkcellPolicy
from cobot_security.posture.catalog import load_controls
from cobot_security.posture.view import PostureView
from cobot_security.resources import shipped_file
from cobot_security.tree import remove_tree

NODE_MODULES = {
    "health_reporter": "cobot_security.nodes.health_reporter",
    "supervisor": "cobot_security.nodes.supervisor",
    "keystore_manager": "cobot_security.nodes.keystore_manager",
    "demo_node": "cobot_security.nodes.demo_node",
}
ROTATED_ENCLAVE = "/cell/gripper"
REVOKED_ENCLAVE = "/cell/mes_bridge"
TAMPERED_FILE = ("/cell/arm_driver", "permissions.xml")
ROGUE = ("rogue_laptop", "/cell")


@dataclass(frozen=True)
class DemoConfig:
    """What the demo runs on and for how long."""

    policy_path: Path
    keystore: Path
    work_dir: Path
    duration_s: float = 60.0
    keep_running: bool = False
    domain_id: int | None = None
    colour: bool = False
    live: bool = False


@dataclass
class DemoOutcome:
    """What the demo produced."""

    verify: VerifyReport | None = None
    reports: dict[str, Path] = field(default_factory=dict)
    timeline: list[str] = field(default_factory=list)
    restarts: list[str] = field(default_factory=list)
    #: (seconds since the scenario started, score) every second: the report's score chart.
    scores: list[tuple[float, int]] = field(default_factory=list)
    #: (seconds since the scenario started, step title) when each step began.
    events: list[tuple[float, str]] = field(default_factory=list)
    #: One entry per step when it ended: key, title, start, score and every control's level.
    steps: list[dict[str, object]] = field(default_factory=list)


def executable(name: str) -> list[str]:
    """The console script beside this interpreter, else ``python -m`` its module."""
    script = Path(sys.executable).parent / name
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", NODE_MODULES[name]]


def _ros_list(values: tuple[str, ...]) -> str:
    return "[" + ",".join(f"'{v}'" for v in values) + "]" if values else "['']"


class _Printer:
    """Progress lines, and the live table redrawn in place on a terminal."""

    def __init__(self, out: TextIO, config: DemoConfig) -> None:
        self.out = out
        self.config = config
        self.lock = threading.Lock()

    def say(self, text: str) -> None:
        with self.lock:
            print(text, file=self.out, flush=True)

    def table(self, view: PostureView, step: Step, elapsed: float) -> None:
        lines = render_view(view, step=step.title, elapsed_s=elapsed, colour=self.config.colour)
        with self.lock:
            if self.config.live:
                self.out.write("\033[H\033[J")
            self.out.write("\n".join(lines) + "\n")
            if self.config.live:
                self.out.write(f"\nwatch: {step.watch}\n")
            self.out.flush()


def _print_verify(report: VerifyReport, printer: _Printer) -> None:
    printer.say(format_report(report, colour=printer.config.colour))


def prepare_keystore(config: DemoConfig, policy: WorkcellPolicy, printer: _Printer) -> VerifyReport:
    """Create the keystore if needed and prove it on every middleware the policy names."""
    if not (config.keystore / "enclaves").is_dir():
        printer.say(f"[1/5] creating keystore {config.keystore} from {config.policy_path} ...")
        init_keystore(config.keystore, policy, utc_now())
    else:
        printer.say(f"[1/5] using keystore {config.keystore}")
        if refresh_crl(Keystore.open(config.keystore), utc_now(), policy):
            printer.say("      its CRL was due and has been re-issued (as keystore_manager would)")
    names = ", ".join(policy.middlewares)
    printer.say(f"[2/5] proving enforcement on {names} (one participant or session per enclave) ...")
    reports = []
    for middleware in policy.middlewares:
        if middleware == ZENOH:
            render_zenoh(Keystore.open(config.keystore), policy, default_zenoh_dir(config.keystore), utc_now())
        report = verify_keystore(policy, config.keystore, utc_now(), middleware=middleware)
        record_verify_result(KeystoreLayout(config.keystore), passed=report.passed, checks=len(report.checks),
                             failures=len(report.failures()), domain_id=report.domain_id, now=utc_now(),
                             middleware=middleware)
        _print_verify(report, printer)
        reports.append(report)
    # The demo goes on only when every configured middleware passed: return the first failure, if any.
    return next((r for r in reports if not r.passed), reports[-1])


def _scenario_keystore(config: DemoConfig) -> Path:
    """A copy of the proven keystore that the scenario may rotate, revoke and tamper with."""
    target = config.work_dir / "scenario-keystore"
    if target.exists():
        remove_tree(target)
    shutil.copytree(config.keystore, target, symlinks=True)
    return target


def _with_scenario_policy(config: DemoConfig) -> DemoConfig:
    """Run on a copy of the policy fitted to this machine: the whole cell on one host, the demo's domain.

    The demo runs every node of the cell on this machine with one CA keystore, so the copy names
    no hosts (per-host keystores are shown in docs/deployment.md).  With a ``--domain-id`` the
    policy does not name, the copy names it: the health reporter compares ROS_DOMAIN_ID with the
    policy (discovery exposure), and verify runs on the policy's domain.
    """
    policy = load_policy(config.policy_path)
    domains = policy.domain_ids
    if config.domain_id is not None and config.domain_id not in domains:
        domains = (config.domain_id,)
    if not policy.hosts and domains == policy.domain_ids:
        return config
    scenario = dataclasses.replace(policy.on_one_machine(), domain_ids=domains)
    target = config.work_dir / "scenario-policy.yaml"
    target.write_text(dump_policy_yaml(scenario, header=f"cobot-security demo: {config.policy_path} on one machine"
                                                        f", domain {domains[0]}"), encoding="utf-8")
    return dataclasses.replace(config, policy_path=target)


def _wait_for_posture(monitor: DemoMonitor, controls: int, timeout_s: float = 45.0) -> None:
    """Until the supervisor has published every control and its score held for 2 s (bounded).

    The healthy step then starts from a settled table, not from the first evaluations that ran
    before every reporter had been heard.
    """
    deadline = time.monotonic() + timeout_s
    held: tuple[int | None, float] = (None, time.monotonic())
    while time.monotonic() < deadline:
        view = monitor.snapshot()
        if view.score is None or len(view.rows) < controls or view.score != held[0]:
            held = (view.score, time.monotonic())
        elif time.monotonic() - held[1] >= 2.0:
            return
        time.sleep(0.2)  # the monitor's callbacks fill the view; nothing to wait on but the clock


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM and SIGHUP behave like Ctrl-C: the demo stops every process it started."""
    raise KeyboardInterrupt


def run_demo(config: DemoConfig, out: TextIO = sys.stdout) -> DemoOutcome:
    """Run the whole demo; every process it started is stopped when it returns or is interrupted."""
    config.work_dir.mkdir(parents=True, exist_ok=True)
    config = _with_scenario_policy(config)
    printer = _Printer(out, config)
    policy = load_policy(config.policy_path)
    outcome = DemoOutcome()
    outcome.verify = prepare_keystore(config, policy, printer)
    keystore = _scenario_keystore(config)
    domain = config.domain_id if config.domain_id is not None else policy.domain_ids[0]
    logs = config.work_dir / "logs"
    logs.mkdir(exist_ok=True)
    group = ProcessGroup(logs)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROS_SECURITY_")}
    env.update(ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    started = time.monotonic()
    attestations = shipped_file("policies/attestations.yaml")

    def note(text: str) -> None:
        stamp = f"t={time.monotonic() - started:5.1f}s"
        outcome.timeline.append(f"{stamp} {text}")
        if not config.live:
            printer.say(f"  {stamp} {text}")

    def on_restart(enclave: str, token: str) -> None:
        for entry in demo_node_entries(policy):
            if entry.enclave == enclave and entry.fqn in group.processes:
                group.restart(entry.fqn)
                outcome.restarts.append(entry.fqn)
                note(f"rolling restart: {entry.fqn} restarted to load the new certificate of {enclave}")

    monitor: DemoMonitor | None = None
    previous_handlers = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        printer.say("[3/5] evidence for the healthy cell: demo attestations, network proof, scans ...")
        attestations = gather_evidence(config.work_dir, policy, keystore, group, env, printer.say)
        printer.say(f"[4/5] starting the security stack and the example cell on ROS_DOMAIN_ID={domain} ...")
        _start_cell(config, policy, keystore, group, env, attestations)
        printer.say(f"      {len(group.processes)} processes; DDS Security is OFF for them: the PyPI rclpy has no "
                    "DDS Security, and the posture shows it")
        # The demo's own node joins the same domain, on loopback only, like its children.
        os.environ.update(ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
        monitor = DemoMonitor(on_restart)
        _wait_for_posture(monitor, len(load_controls(shipped_file("policies/posture_controls.yaml")).controls))
        printer.say("[5/5] scenario (the posture table follows the supervisor live):")
        started = time.monotonic()
        _play(config, policy, keystore, group, monitor, printer, note, started, env, outcome)
        outcome.reports = write_reports(config.work_dir, monitor.call(monitor.get_report), outcome, policy,
                                        keystore, printer.say)
        if config.keep_running:
            printer.say("keep running: Ctrl-C stops every process")
            while True:
                time.sleep(1.0)
                if config.live:
                    printer.table(monitor.snapshot(), STEPS[-1], time.monotonic() - started)
    except KeyboardInterrupt:
        printer.say("interrupted: stopping every process")
    finally:
        group.shutdown(monitor.close if monitor is not None else None)
        for sig, handler in previous_handlers.items():
            signal.signal(sig, handler)
    return outcome


def _start_cell(config: DemoConfig, policy: WorkcellPolicy, keystore: Path, group: ProcessGroup,
                env: dict[str, str], attestations: Path) -> None:
    """The security stack and one demo node per cell node, each with its policy enclave."""
    common = ["-p", f"keystore:={keystore}", "-p", f"policy:={config.policy_path}"]
    stack = {
        "health_reporter": ["-p", "period_s:=1.0"],
        "supervisor": ["-p", f"controls:={shipped_file('policies/posture_controls.yaml')}",
                       "-p", f"attestations:={attestations}",
                       "-p", "period_s:=1.0", "-p", "stale_after_s:=4.0"],
        "keystore_manager": ["-p", "check_period_s:=2.0"],
    }
    for name, params in stack.items():
        # The stack's own nodes run in their policy enclaves too (graph conformance checks them).
        spec = secure_node_spec(policy, keystore, "cobot_security", name, name, "/",
                                policy_source=config.policy_path, unsafe_no_security=True)
        group.start(name, executable(name) + list(spec.arguments) + common + params, dict(env, **spec.env))
    for entry in demo_node_entries(policy):
        spec = secure_node_spec(policy, keystore, "cobot_security", "demo_node", entry.name, entry.namespace,
                                policy_source=config.policy_path, unsafe_no_security=True)
        argv = executable("demo_node") + list(spec.arguments) + [
            "-r", f"__node:={entry.name}", "-r", f"__ns:={entry.namespace}",
            *(arg for key, names in entry.parameters().items() for arg in ("-p", f"{key}:={_ros_list(tuple(names))}"))]
        group.start(entry.fqn, argv, dict(env, **spec.env))


def _record_step(outcome: DemoOutcome, step: Step, view: PostureView, elapsed: float) -> None:
    """What ``step`` left behind, just before the next step acts (the report and the e2e test read it)."""
    started = next((when for when, title in reversed(outcome.events) if title == step.title), 0.0)
    outcome.steps.append({
        "key": step.key, "title": step.title, "turns_red": list(step.turns_red),
        "started_s": started, "ended_s": round(elapsed, 1),
        "score": view.score, "levels": {control: row.level.name for control, row in sorted(view.rows.items())},
        "reasons": {control: row.message for control, row in sorted(view.rows.items())},
    })


def _play(config: DemoConfig, policy: WorkcellPolicy, keystore: Path, group: ProcessGroup, monitor: DemoMonitor,
          printer: _Printer, note: Callable[[str], None], started: float, env: dict[str, str],
          outcome: DemoOutcome) -> None:
    """Walk the scenario steps on the clock, redrawing the table and sampling the score."""
    done: set[str] = set()
    last_redraw = last_sample = -1.0
    while True:
        elapsed = time.monotonic() - started
        fraction = min(1.0, elapsed / config.duration_s)
        view = monitor.snapshot()
        if elapsed - last_sample >= 1.0 and view.score is not None:
            outcome.scores.append((round(elapsed, 1), view.score))
            last_sample = elapsed
        for step in STEPS:
            if fraction >= step.at and step.key not in done:
                if done:
                    _record_step(outcome, _current(done), view, elapsed)
                    if not config.live:
                        # Show what the previous step did before the next one acts.
                        printer.table(view, _current(done), elapsed)
                done.add(step.key)
                outcome.events.append((round(elapsed, 1), step.title))
                note(f"step: {step.title} — watch: {step.watch}")
                _act(step, policy, keystore, group, monitor, note, env)
        if config.live and elapsed - last_redraw >= 1.0:
            printer.table(monitor.snapshot(), _current(done), elapsed)
            last_redraw = elapsed
        if fraction >= 1.0:
            _record_step(outcome, STEPS[-1], view, elapsed)
            printer.table(view, STEPS[-1], elapsed)
            return
        time.sleep(0.2)


def _current(done: set[str]) -> Step:
    return [s for s in STEPS if s.key in done][-1] if done else STEPS[0]


def _act(step: Step, policy: WorkcellPolicy, keystore: Path, group: ProcessGroup, monitor: DemoMonitor,
         note: Callable[[str], None], env: dict[str, str]) -> None:
    """Do what a step does to the cell."""
    if step.key == "renewal_window":
        enclave = policy.enclave(ROTATED_ENCLAVE)
        assert enclave is not None
        back = policy.lifetimes.enclave_duration - policy.lifetimes.renew_before + _dt.timedelta(days=5)
        Keystore.open(keystore).create_enclave(enclave, policy, utc_now() - back, force=True)
        note(f"{ROTATED_ENCLAVE} re-issued as if {back.days} days ago: inside its renew window")
    elif step.key == "rotation":
        answer = monitor.call(monitor.rotate_due)
        note(f"/keystore_manager/rotate_due answered: {answer}")
    elif step.key == "revocation":
        entry = revoke_enclave(Keystore.open(keystore), REVOKED_ENCLAVE, "key_compromise", utc_now(), policy)
        note(f"revoked {REVOKED_ENCLAVE} (serial {entry.serial[:16]}…, key_compromise); crl.pem re-issued")
    elif step.key == "rogue_node":
        name, namespace = ROGUE
        argv = executable("demo_node") + ["--ros-args", "-r", f"__node:={name}", "-r", f"__ns:={namespace}",
                                          "-p", "publish:=['/cell/joint_states']"]
        group.start(f"{namespace}/{name}", argv, env)
        note(f"started {namespace}/{name} by hand, outside the launch helper (which refuses nodes not in the policy)")
    elif step.key == "tamper":
        path = KeystoreLayout(keystore).enclave_dir(TAMPERED_FILE[0]) / TAMPERED_FILE[1]
        with path.open("ab") as handle:
            handle.write(b"<!-- tampered -->\n")
        note(f"appended a comment to {path.relative_to(keystore)}")
