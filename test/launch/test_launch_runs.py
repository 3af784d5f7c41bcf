"""The package's launch files run for real, as ``ros2 launch cobot_security ...`` runs them.

Each test starts ``test/launch/ros2_launch.py`` (ros2launch's API, what the ``ros2 launch`` verb
calls) in its own process group on a leased domain, watches the graph from a hidden test node and
stops the launch with SIGINT.  Needs launch, launch_ros and ros2launch (skipped where absent).
The package is found by name through the venv's ament layout that scripts/setup.sh writes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytest.importorskip("launch.actions", reason="launch is not installed (ROS 2 install needed)")
pytest.importorskip("launch_ros.actions", reason="launch_ros is not installed (ROS 2 install needed)")
pytest.importorskip("ros2launch.api", reason="ros2launch is not installed (ROS 2 install needed)")

import rclpy  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from std_msgs.msg import String  # noqa: E402

from cobot_security.clock import utc_now  # noqa: E402
from cobot_security.keystore.store import init_keystore  # noqa: E402
from cobot_security.nodes.security_probe import probe  # noqa: E402
from cobot_security.policy.load import load_policy  # noqa: E402

pytestmark = [pytest.mark.launch, pytest.mark.ros]

REPO = Path(__file__).resolve().parents[2]
RUNNER = Path(__file__).resolve().parent / "ros2_launch.py"
WORKCELL = REPO / "policies" / "workcell.yaml"
SECURITY_VARS = (
    "ROS_SECURITY_ENABLE", "ROS_SECURITY_STRATEGY", "ROS_SECURITY_KEYSTORE", "ROS_SECURITY_ENCLAVE_OVERRIDE")


class Launch:
    """One ``ros2 launch`` process, its output in a file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen([sys.executable, str(RUNNER), *args], env=env, stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> int | None:
        """SIGINT like Ctrl-C; SIGKILL the group if it does not end (then None)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            if self.wait(30) is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
                return None
        return self.proc.returncode


@pytest.fixture(scope="module")
def keystore(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("launch") / "keystore"
    init_keystore(path, load_policy(WORKCELL), utc_now())
    return path


@pytest.fixture
def launch_env(domain_id: int, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The launch's environment: a leased domain on loopback, the venv's ament prefix, no security."""
    for key in SECURITY_VARS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("ROS_DOMAIN_ID", str(domain_id))
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    prefixes = [sys.prefix, *filter(None, os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep))]
    monkeypatch.setenv("AMENT_PREFIX_PATH", os.pathsep.join(dict.fromkeys(prefixes)))
    return dict(os.environ, PYTHONUNBUFFERED="1")


@pytest.fixture
def start_launch(tmp_path: Path) -> Iterator[Callable[..., Launch]]:
    started: list[Launch] = []

    def start(args: list[str], env: dict[str, str]) -> Launch:
        launch = Launch(args, env, tmp_path / f"launch{len(started)}.log")
        started.append(launch)
        return launch

    yield start
    for launch in started:
        launch.stop()


class GraphWatch:
    """A hidden test node (skipped by graph conformance) that samples the graph and hears topics."""

    def __init__(self, domain: int) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain)
        self.node = rclpy.create_node("_launch_test", context=self.context)
        self.heard: dict[str, list[object]] = {}
        self.lock = threading.Lock()
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def hear(self, topic: str, msg_type: type) -> None:
        def on_message(msg: object) -> None:
            with self.lock:
                self.heard.setdefault(topic, []).append(msg)
        self.node.create_subscription(msg_type, topic, on_message, 50)

    def messages(self, topic: str) -> list[object]:
        with self.lock:
            return list(self.heard.get(topic, []))

    def nodes(self) -> set[str]:
        return {(ns.rstrip("/") + "/" + name) for name, ns in self.node.get_node_names_and_namespaces()}

    def rosout_gids(self, fqn: str) -> set[bytes]:
        return {bytes(i.endpoint_gid) for i in self.node.get_publishers_info_by_topic("/rosout")
                if (i.node_namespace.rstrip("/") + "/" + i.node_name) == fqn}

    def wait_for(self, predicate: Callable[[], object], timeout: float) -> object:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.1)  # graph polling: rclpy has no graph-change event to wait on
        return predicate()

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=2)
        self.node.destroy_node()
        self.context.try_shutdown()
        self.thread.join(5)


@pytest.fixture
def graph(launch_env: dict[str, str], domain_id: int) -> Iterator[GraphWatch]:
    watch = GraphWatch(domain_id)
    yield watch
    watch.close()


def _child_environ(launch: Launch, executable: str) -> list[dict[str, str]]:
    """The environments of the launch's child processes running ``executable``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if os.getpgid(int(proc.name)) != launch.proc.pid:
                continue
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            if not any(part.endswith(executable.encode()) for part in cmdline[:2]):
                continue
            raw = (proc / "environ").read_bytes().split(b"\0")
        except (OSError, ProcessLookupError):
            continue
        found.append(dict(item.decode(errors="replace").split("=", 1) for item in raw if b"=" in item))
    return found


def test_default_secure_launch_fails_at_once_on_an_rmw_without_dds_security(
        start_launch: Callable[..., Launch], launch_env: dict[str, str], keystore: Path) -> None:
    env = dict(launch_env, ROS_AUTOMATIC_DISCOVERY_RANGE="OFF", ROS_SECURITY_ENABLE="true",
               ROS_SECURITY_STRATEGY="Enforce", ROS_SECURITY_KEYSTORE=str(keystore))
    os.environ.update({k: env[k] for k in SECURITY_VARS[:3]})
    try:
        security_error = probe("/cobot_security/health_reporter")
    finally:
        for key in SECURITY_VARS:
            os.environ.pop(key, None)
    launch = start_launch(["cobot_security", "workcell_demo.launch.py", f"keystore:={keystore}",
                           f"domain_id:={launch_env['ROS_DOMAIN_ID']}"], launch_env)
    if security_error is None:  # an rmw with DDS Security: the secure launch must start the cell
        assert launch.wait(15) is None, launch.output()
        assert "process started" in launch.output()
        assert launch.stop() == 0, launch.output()
        return
    assert launch.wait(60) == 1, launch.output()
    out = launch.output()
    assert "cannot start a node with DDS Security" in out and "pass secure:=false" in out, out
    assert "no authentication, no encryption and no access control" in out
    assert "process started" not in out and "Traceback" not in out, out  # nothing started, one line


def test_secure_false_overrides_security_exported_by_the_shell(
        start_launch: Callable[..., Launch], launch_env: dict[str, str], keystore: Path, graph: GraphWatch) -> None:
    env = dict(launch_env, ROS_SECURITY_ENABLE="true", ROS_SECURITY_STRATEGY="Enforce")
    graph.hear("/cell/joint_states", String)
    launch = start_launch(["cobot_security", "workcell_demo.launch.py", f"keystore:={keystore}", "secure:=false",
                           f"domain_id:={launch_env['ROS_DOMAIN_ID']}", "period_s:=0.2"], env)
    assert graph.wait_for(lambda: graph.messages("/cell/joint_states"), 60), launch.output()
    children = _child_environ(launch, "demo_node")
    assert len(children) == 7, launch.output()
    assert {c.get("ROS_SECURITY_ENABLE") for c in children} == {"false"}
    assert "ROS_SECURITY_ENABLE=false, overriding the environment" in launch.output()
    assert "not set" not in launch.output()
    assert launch.stop() == 0, launch.output()


def test_a_launch_whose_required_nodes_all_die_exits_non_zero(
        start_launch: Callable[..., Launch], launch_env: dict[str, str], tmp_path: Path) -> None:
    # Security exported by the shell with a keystore that does not exist: rcl refuses every node.
    env = dict(launch_env, ROS_SECURITY_ENABLE="true", ROS_SECURITY_STRATEGY="Enforce",
               ROS_SECURITY_KEYSTORE=str(tmp_path / "missing"))
    launch = start_launch(["cobot_security", "security_stack.launch.py", f"keystore:={tmp_path / 'missing'}",
                           f"domain_id:={launch_env['ROS_DOMAIN_ID']}"], env)
    assert launch.wait(90) == 1, launch.output()
    assert "exited with code" in launch.output() and "required node" in launch.output()


def test_launch_by_path_without_the_ament_layout_says_what_to_run(
        start_launch: Callable[..., Launch], launch_env: dict[str, str], tmp_path: Path) -> None:
    env = {k: v for k, v in launch_env.items() if k != "AMENT_PREFIX_PATH"}
    launch = start_launch([str(REPO / "launch" / "security_stack.launch.py"), f"keystore:={tmp_path / 'ks'}"], env)
    assert launch.wait(60) == 1, launch.output()
    out = launch.output()
    assert "package cobot_security is not in the ament index (AMENT_PREFIX_PATH=unset)" in out, out
    assert "export AMENT_PREFIX_PATH=" in out and "process started" not in out


def test_a_node_missing_from_the_policy_fails_the_launch_with_exit_1(
        start_launch: Callable[..., Launch], launch_env: dict[str, str], tmp_path: Path) -> None:
    user_file = tmp_path / "cell.launch.py"
    user_file.write_text(
        "from launch import LaunchDescription\n"
        "from cobot_security.launch_integration import secure_node\n\n\n"
        "def generate_launch_description():\n"
        f"    return LaunchDescription([secure_node({str(WORKCELL)!r}, '/tmp/ks', 'cobot_security', 'demo_node',"
        " 'foo', '/cell')])\n")
    launch = start_launch([str(user_file)], launch_env)
    assert launch.wait(60) == 1, launch.output()
    assert f"node /cell/foo has no enclave in policy {WORKCELL}: add it under enclaves:" in launch.output()


def _line_index(lines: list[str], match: Callable[[str], bool], nth: int = 1) -> int:
    hits = [i for i, line in enumerate(lines) if match(line)]
    assert len(hits) >= nth, "\n".join(lines)
    return hits[nth - 1]


def _process_tag(lines: list[str], node: str) -> str:
    """The launch's name (``demo_node-N``) of the first process whose node ``/cell/<node>`` logged ready."""
    line = lines[_line_index(lines, lambda text: f"[cell.{node}]: ready:" in text)]
    return line.split("]", 1)[0].lstrip("[")


def _restart_required(enclave: str, token: str) -> DiagnosticArray:
    status = DiagnosticStatus(level=b"\x01", name=f"cobot_security/restart_required{enclave}", message="rotated",
                              hardware_id="test", values=[KeyValue(key="rotated_at", value=token)])
    return DiagnosticArray(status=[status])


def test_rolling_restart_is_make_before_break_by_a_declared_listener(
        start_launch: Callable[..., Launch], launch_env: dict[str, str], keystore: Path, graph: GraphWatch) -> None:
    vision = ("/cell/camera", "/cell/detector")
    graph.hear("/cobot_security/health", DiagnosticArray)
    launch = start_launch(["cobot_security", "workcell_demo.launch.py", f"keystore:={keystore}", "secure:=false",
                           "rolling_restart:=true", f"domain_id:={launch_env['ROS_DOMAIN_ID']}", "period_s:=0.5"],
                          launch_env)
    wanted = {*vision, "/cell/arm_driver", "/launch_listener", "/health_reporter"}
    # Up means in the graph and done starting ("ready" logged): a node stopped before its ready line
    # would leave the ordering below nothing to compare.
    assert graph.wait_for(lambda: wanted <= graph.nodes() and all(graph.rosout_gids(f) for f in vision)
                          and all(f"[cell.{f.rsplit('/', 1)[1]}]: ready:" in launch.output() for f in vision), 90), \
        launch.output()
    before = {fqn: graph.rosout_gids(fqn) for fqn in (*vision, "/cell/arm_driver")}

    publisher = graph.node.create_publisher(DiagnosticArray, "/cobot_security/health", 10)
    samples: list[set[str]] = []
    deadline = time.monotonic() + 90
    restarted: set[str] = set()
    while time.monotonic() < deadline and restarted != set(vision):
        publisher.publish(_restart_required("/cell/vision", "2027-01-01T00:00:00Z"))
        samples.append(graph.nodes())
        restarted = {fqn for fqn in vision if graph.rosout_gids(fqn) - before[fqn]}
        time.sleep(0.05)
    assert restarted == set(vision), launch.output()
    # Make before break: the detector was stopped only after the camera's replacement was up (its
    # node created: its "ready" line); the launch's own graph check is what waits for it.
    # The graph shows a replacement before its output has crossed launch's pipes: wait for the lines.
    old_detector = _process_tag(launch.output().splitlines(), "detector")
    settled = time.monotonic() + 20
    while time.monotonic() < settled:
        lines = launch.output().splitlines()
        if (sum("[cell.camera]: ready:" in line for line in lines) >= 2
                and any(line.startswith(f"[INFO] [{old_detector}]: process has") for line in lines)):
            break
        time.sleep(0.1)
    camera_ready = _line_index(lines, lambda line: "[cell.camera]: ready:" in line, nth=2)
    detector_down = _line_index(lines, lambda line: line.startswith(f"[INFO] [{old_detector}]: process has"))
    assert camera_ready < detector_down, "\n".join(lines)
    assert graph.rosout_gids("/cell/arm_driver") == before["/cell/arm_driver"]  # other enclaves untouched
    # The launch side is a declared node of the cell; nothing ran as an unknown launch node.
    assert not [n for s in samples for n in s if n.startswith("/launch_ros_")]
    graph_statuses = [s for msg in graph.messages("/cobot_security/health") for s in msg.status
                      if s.name.startswith("cobot_security/graph_conformance/")]
    assert any(s.name == "cobot_security/graph_conformance/launch_listener" and s.level == b"\x00"
               for s in graph_statuses), sorted({s.name for s in graph_statuses})
    assert not [s.message for s in graph_statuses if s.level == b"\x02"]
    assert launch.stop() == 0, launch.output()


def test_a_replacement_that_never_appears_fails_the_rolling_restart_loudly(
        start_launch: Callable[..., Launch], launch_env: dict[str, str], keystore: Path, graph: GraphWatch,
        tmp_path: Path) -> None:
    # The gripper runs with discovery off: its replacement can never be seen in the graph.
    user_file = tmp_path / "restart.launch.py"
    user_file.write_text(
        "from launch import LaunchDescription\n"
        "from cobot_security.launch_integration import RollingRestart, secure_node\n\n"
        f"POLICY, KEYSTORE = {str(WORKCELL)!r}, {str(keystore)!r}\n\n\n"
        "def generate_launch_description():\n"
        "    gripper = lambda: secure_node(POLICY, KEYSTORE, 'cobot_security', 'demo_node', 'gripper', '/cell',\n"
        "                                  unsafe_no_security=True, output='screen',\n"
        "                                  additional_env={'ROS_AUTOMATIC_DISCOVERY_RANGE': 'OFF'})\n"
        "    restart = RollingRestart(POLICY, {'/cell/gripper': gripper}, up_timeout_s=5.0)\n"
        "    return LaunchDescription([restart.action()])\n")
    launch = start_launch([str(user_file)], launch_env)
    assert graph.wait_for(lambda: "/launch_listener" in graph.nodes(), 60), launch.output()
    assert graph.wait_for(lambda: "[cell.gripper]: ready:" in launch.output(), 60), launch.output()
    publisher = graph.node.create_publisher(DiagnosticArray, "/cobot_security/health", 10)
    deadline = time.monotonic() + 60
    while launch.proc.poll() is None and time.monotonic() < deadline:
        publisher.publish(_restart_required("/cell/gripper", "2027-01-01T00:00:00Z"))
        time.sleep(0.5)
    assert launch.wait(30) == 1, launch.output()
    assert ("rolling restart: /cell/gripper was restarted but its node did not appear in the graph within 5 s"
            in launch.output()), launch.output()
