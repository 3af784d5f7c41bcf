"""``policy learn`` on the example cell's demo nodes, running without security as real rclpy processes.

The cell's nodes run as ``demo_node`` processes (each in its policy enclave, using exactly its
policy entry: topics, services, actions); a node starts halfway through the window and another
lives for a moment only.  The learned policy must compile to the example's grants for the cell's
enclaves, include both extra nodes, never name the observer, and give a keystore that ``verify``
proves with real DDS Security participants.  Every wait is bounded.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import rclpy
from rclpy.node import Node

from cobot_security.launch_plan import DemoNodeEntry, demo_node_entries
from cobot_security.policy.grants import compute_dds_grants
from cobot_security.policy.load import load_policy

REPO = Path(__file__).resolve().parents[2]
WORKCELL = REPO / "policies" / "workcell.yaml"
WINDOW_S = 16.0


def _script(name: str) -> list[str]:
    script = Path(sys.executable).parent / name
    assert script.is_file(), f"console script {name} not installed beside {sys.executable}"
    return [str(script)]


def _ros_list(names: list[str]) -> str:
    return "[" + ",".join(f"'{n}'" for n in names) + "]"


class Cell:
    """The demo-node processes of one test; all stopped at teardown."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env, self.log_dir = env, log_dir
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, entry: DemoNodeEntry) -> None:
        argv = _script("demo_node") + ["--ros-args", "--enclave", entry.enclave, "-r", f"__node:={entry.name}",
                                       "-r", f"__ns:={entry.namespace}", "-p", "period_s:=0.5"]
        for key, names in entry.parameters().items():
            argv += ["-p", f"{key}:={_ros_list(names)}"]
        log = (self.log_dir / f"{entry.name}.log").open("wb")
        self.procs[entry.fqn] = subprocess.Popen(argv, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                                 start_new_session=True)
        log.close()

    def stop(self, fqn: str) -> None:
        proc = self.procs[fqn]
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    def stop_all(self) -> None:
        for fqn in self.procs:
            self.stop(fqn)


class GraphProbe:
    """A hidden test node that reads the graph (no spinning: rmw's discovery fills the cache)."""

    def __init__(self, domain: int) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain)
        self.node = Node("_learn_test_probe", context=self.context, start_parameter_services=False)

    def wait_for_nodes(self, fqns: set[str], timeout: float, with_topic: str | None = None) -> bool:
        """Whether all ``fqns`` (and, if given, a publisher of ``with_topic``) appear within ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            present = set(self.node.get_fully_qualified_node_names())
            publishers = (self.node.count_publishers(with_topic) if with_topic else 1)
            if fqns <= present and publishers:
                return True
            time.sleep(0.2)  # graph polling: rclpy exposes no graph-change event to wait on
        return False

    def close(self) -> None:
        self.node.destroy_node()
        self.context.try_shutdown()


@pytest.fixture
def cell(ros_env: dict[str, str], tmp_path: Path) -> Iterator[Cell]:
    running = Cell(ros_env, tmp_path)
    try:
        yield running
    finally:
        running.stop_all()


@pytest.fixture
def probe(ros_env: dict[str, str], ros_domain: int) -> Iterator[GraphProbe]:
    graph = GraphProbe(ros_domain)
    try:
        yield graph
    finally:
        graph.close()


def _extra(name: str, topic: str) -> DemoNodeEntry:
    return DemoNodeEntry(name=name, namespace="/cell", enclave=f"/cell/{name}", publish=(topic,), subscribe=())


class Learner:
    """``policy learn`` as a process; its stderr is read as it comes (the lines naming nodes it saw)."""

    def __init__(self, env: dict[str, str], domain: int, output: Path) -> None:
        argv = _script("cobot-security") + ["policy", "learn", "--duration", str(WINDOW_S), "--domain-id",
                                             str(domain), "--enclaves", "reported", "--sample-period", "0.1",
                                             "-o", str(output)]
        self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self.changed = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self.changed:
                self.lines.append(line)
                self.changed.notify_all()

    def wait_for_line(self, text: str, timeout: float) -> bool:
        """Whether the learner printed a line containing ``text`` within ``timeout`` seconds."""
        with self.changed:
            return self.changed.wait_for(lambda: any(text in line for line in self.lines), timeout)

    def finish(self, timeout: float) -> str:
        """Wait for the exit; everything it printed on stderr."""
        self.proc.wait(timeout=timeout)
        self.reader.join(timeout=10)
        return "".join(self.lines)


def test_learn_on_the_running_example_cell(cell: Cell, probe: GraphProbe, ros_env: dict[str, str],
                                           ros_domain: int, tmp_path: Path) -> None:
    example = load_policy(WORKCELL)
    entries = demo_node_entries(example)
    for entry in entries:
        cell.start(entry)
    assert probe.wait_for_nodes({e.fqn for e in entries}, 90), "the demo cell did not come up"
    output = tmp_path / "learned.yaml"
    learner = Learner(ros_env, ros_domain, output)
    # The window starts when the observer samples; it is in the graph (hidden) from then on.
    assert probe.wait_for_nodes({f"/_cobot_security_learn_{learner.proc.pid}"}, 60), "the observer never joined"
    started = time.monotonic()
    # A node that lives for a moment only: stopped as soon as the learner reports it with its
    # enclave and publisher (its discovery of the node is its own: another participant seeing it
    # first proves nothing, and under load it lagged by seconds).
    blip = _extra("barcode_reader", "/cell/barcodes")
    cell.start(blip)
    assert learner.wait_for_line(f"{blip.fqn} (enclave {blip.enclave}, 1 endpoint(s))", WINDOW_S / 2 - 1), \
        "".join(learner.lines)
    cell.stop(blip.fqn)
    # A node that starts halfway through the window.
    time.sleep(max(0.0, started + WINDOW_S / 2 - time.monotonic()))
    late = _extra("conveyor", "/cell/conveyor/speed")
    cell.start(late)
    err = learner.finish(timeout=WINDOW_S + 60)
    assert learner.proc.returncode == 0, err
    assert cell.procs[blip.fqn].returncode is not None  # gone long before the window ended
    assert "learning:" in err and f"wrote {output}" in err

    learned = load_policy(output)
    text = output.read_text()
    body = text.split("\nenclaves:")[1]
    assert "_cobot_security_learn" not in text  # the observer never appears
    assert "Hidden nodes left out: /_learn_test_probe." in text and "_learn_test_probe" not in body
    assert "*" not in body
    for enclave in example.enclaves:
        if enclave.path.startswith("/cell/"):
            got = learned.enclave(enclave.path)
            assert got is not None, f"{enclave.path} not learned"
            assert compute_dds_grants(got) == compute_dds_grants(enclave), enclave.path
    assert learned.enclave("/cell/barcode_reader").nodes[0].publish == ("barcodes",)
    assert learned.enclave("/cell/conveyor").nodes[0].publish == ("~/speed",)

    diff = subprocess.run(_script("cobot-security") + ["policy", "diff", str(WORKCELL), str(output),
                                                       "--format", "json"],
                          env=ros_env, capture_output=True, text=True, timeout=60)
    body = json.loads(diff.stdout)
    changed = {e["enclave"]: e["status"] for e in body["enclaves"]}
    assert changed == {"/cell/barcode_reader": "added", "/cell/conveyor": "added",
                       "/cobot_security/health_reporter": "removed", "/cobot_security/keystore_manager": "removed",
                       "/cobot_security/launch_listener": "removed", "/cobot_security/supervisor": "removed"}

    cell.stop_all()
    keystore = tmp_path / "ks"
    env = {k: v for k, v in ros_env.items() if k != "COBOT_SECURITY_CA_PASSPHRASE"}
    init = subprocess.run(_script("cobot-security") + ["init", "--keystore", str(keystore), "--policy", str(output)],
                          env=env, capture_output=True, text=True, timeout=120)
    assert init.returncode == 0, init.stderr
    verify = subprocess.run(_script("cobot-security") + ["verify", "--keystore", str(keystore), "--policy", str(output),
                                                         "--domain-id", str(ros_domain), "--no-intruders"],
                            env=env, capture_output=True, text=True, timeout=300)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "0 failure(s)" in verify.stdout
    assert os.path.isdir(keystore / "enclaves" / "cell" / "vision")
