"""Run middleware agents as real processes and collect what each one saw (no DDS import here).

Each agent is one participant in its own process, like one ROS 2 node: the Cyclone DDS agent
(``dds/agent.py``) or the Fast DDS agent (``dds/fastdds/agent.cpp``, compiled), chosen per spec, so
one run can mix vendors.  Both speak the same JSON-line protocol.  The runner starts them together,
reads their reports, and stops them once ``done`` holds (plus a grace period in which any unexpected
delivery still gets recorded) or the timeout passes.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cobot_security.dds import fastdds_build
from cobot_security.dds.properties import fastdds_security_properties, loopback_config
from cobot_security.errors import DdsUnavailableError
from cobot_security.policy.model import CYCLONEDDS, FASTDDS, ZENOH

_PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])


@dataclass(frozen=True)
class ZenohSession:
    """How a Zenoh agent opens its session: ``role`` router or session, from a configuration file
    (``config``) or an in-memory document (``config_document``, JSON), at ``endpoint``; ``keys``
    maps each DDS name the agent uses to its rmw_zenoh key; the router puts and queries on ``probes``.
    """

    role: str
    endpoint: str
    keys: tuple[tuple[str, str], ...]
    config: Path | None = None
    config_document: str | None = None
    probes: tuple[str, ...] = ()


@dataclass(frozen=True)
class AgentSpec:
    """What one participant loads (``enclave_dir`` None: no DDS Security at all) and tries.

    ``marker`` is appended to every sample written, so a capture can look for the payload;
    ``middleware`` picks the agent (``cyclonedds``, ``fastdds`` or ``zenoh``, whose session is
    described by ``zenoh``); ``start_alone`` makes the runner wait for this agent to be ready before
    starting the next (a Zenoh router before its clients).
    """

    name: str
    domain_id: int
    enclave_dir: Path | None
    writers: tuple[str, ...] = ()
    readers: tuple[str, ...] = ()
    marker: str = ""
    middleware: str = CYCLONEDDS
    zenoh: ZenohSession | None = None
    start_alone: bool = False


@dataclass
class AgentResult:
    """What one participant reported: creation outcomes (``None`` = ok, else the error) and receipts."""

    name: str
    participant_error: str | None = None
    participant_created: bool = False
    writers: dict[str, str | None] = field(default_factory=dict)
    readers: dict[str, str | None] = field(default_factory=dict)
    received: set[tuple[str, str]] = field(default_factory=set)
    ready: bool = False
    stopped: bool = False
    fatal: str | None = None

    def apply(self, event: Mapping[str, object]) -> None:
        """Fold one JSON event from the agent into this result."""
        kind = event.get("event")
        error = None if event.get("ok") else f"{event.get('error')} (code {event.get('code')})"
        if kind == "participant":
            self.participant_created = bool(event.get("ok"))
            self.participant_error = error
            self.ready = self.ready or not self.participant_created
        elif kind in ("writer", "reader"):
            table = self.writers if kind == "writer" else self.readers
            table[str(event["topic"])] = error
        elif kind == "ready":
            self.ready = True
        elif kind == "received":
            self.received.add((str(event["topic"]), str(event["sender"])))
        elif kind == "stopped":
            self.stopped = True
        elif kind == "fatal":
            self.fatal = str(event.get("error"))
            self.ready = True


def agent_environment(base: Mapping[str, str] | None = None, loopback: bool = True) -> dict[str, str]:
    """Environment for agent processes: package importable, discovery confined to loopback."""
    env = dict(os.environ if base is None else base)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_PARENT, env.get("PYTHONPATH", "")) if p)
    if loopback:
        env["CYCLONEDDS_URI"] = loopback_config()
    return env


def installed_middlewares() -> tuple[str, ...]:
    """The middlewares whose agents can run here (importable, or buildable for Fast DDS), in canonical order."""
    found = []
    if importlib.util.find_spec("cyclonedds") is not None:
        found.append(CYCLONEDDS)
    headers = Path("/usr/include/fastdds/dds/domain/DomainParticipant.hpp")
    if fastdds_build.agent_path().is_file() or (shutil.which(fastdds_build.COMPILER) and headers.is_file()):
        found.append(FASTDDS)
    if importlib.util.find_spec("zenoh") is not None:
        found.append(ZENOH)
    return tuple(found)


def agent_command(spec: AgentSpec, *, period_s: float, deadline_s: float) -> list[str]:
    """The command line that runs ``spec`` as its middleware's agent.

    :raises DdsUnavailableError: the Fast DDS agent cannot be built; the middleware is unknown.
    """
    if spec.middleware == CYCLONEDDS:
        payload = {
            "name": spec.name, "domain_id": spec.domain_id,
            "enclave_dir": str(spec.enclave_dir) if spec.enclave_dir else None,
            "writers": list(spec.writers), "readers": list(spec.readers), "marker": spec.marker,
            "period_s": period_s, "deadline_s": deadline_s,
        }
        return [sys.executable, "-m", "cobot_security.dds.agent", json.dumps(payload)]
    if spec.middleware == FASTDDS:
        command = [str(fastdds_build.build_agent()), "--name", spec.name, "--domain", str(spec.domain_id),
                   "--marker", spec.marker, "--period", str(period_s), "--deadline", str(deadline_s)]
        if spec.enclave_dir is not None:
            for key, value in fastdds_security_properties(spec.enclave_dir):
                command += ["--property", f"{key}={value}"]
        for flag, topics in (("--writer", spec.writers), ("--reader", spec.readers)):
            for topic in topics:
                command += [flag, topic]
        return command
    if spec.middleware == ZENOH and spec.zenoh is not None:
        session = spec.zenoh
        payload = {
            "name": spec.name, "domain_id": spec.domain_id, "role": session.role, "endpoint": session.endpoint,
            "config": str(session.config) if session.config else None,
            "config_document": json.loads(session.config_document) if session.config_document else None,
            "keys": dict(session.keys), "probes": list(session.probes), "writers": list(spec.writers),
            "readers": list(spec.readers), "period_s": period_s, "deadline_s": deadline_s,
        }
        return [sys.executable, "-m", "cobot_security.dds.zenoh_agent", json.dumps(payload)]
    raise DdsUnavailableError(f"no agent for middleware {spec.middleware!r}")


def run_agents(
    specs: list[AgentSpec],
    done: Callable[[Mapping[str, AgentResult]], bool],
    *,
    timeout_s: float = 30.0,
    grace_s: float = 1.5,
    period_s: float = 0.1,
    loopback: bool = True,
) -> dict[str, AgentResult]:
    """Start one process per spec, wait for ``done`` (then ``grace_s``) or ``timeout_s``, stop all.

    :raises DdsUnavailableError: when an agent cannot start (cyclonedds not importable, Fast DDS
        agent not buildable).
    """
    results = {spec.name: AgentResult(spec.name) for spec in specs}
    lock = threading.Lock()
    changed = threading.Condition(lock)
    env = agent_environment(loopback=loopback)
    processes: list[subprocess.Popen[str]] = []

    def pump(proc: subprocess.Popen[str], result: AgentResult) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            with changed:
                result.apply(event)
                changed.notify_all()
        assert proc.stderr is not None
        stderr = proc.stderr.read()
        code = proc.wait()
        with changed:
            # An agent that reported "stopped" and then hung in its middleware's teardown (killed
            # after the wait below) has delivered its whole report: that is not a failed proof.
            if code != 0 and result.fatal is None and not result.stopped:
                tail = [line for line in stderr.strip().splitlines() if line.strip()][-1:] or ["no output"]
                result.fatal = f"agent {result.name} exited with status {code}: {tail[0]}"
            result.stopped = True
            result.ready = True
            changed.notify_all()

    threads = []
    try:
        commands = [agent_command(spec, period_s=period_s, deadline_s=timeout_s + grace_s + 30.0) for spec in specs]
        for spec, command in zip(specs, commands):
            proc = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            processes.append(proc)
            thread = threading.Thread(target=pump, args=(proc, results[spec.name]), daemon=True)
            thread.start()
            threads.append(thread)
            if spec.start_alone:
                first = results[spec.name]
                with changed:
                    changed.wait_for(lambda: first.ready, timeout=timeout_s)
        deadline = time.monotonic() + timeout_s
        with changed:
            while time.monotonic() < deadline:
                if all(r.ready for r in results.values()) and done(results):
                    break
                changed.wait(timeout=0.2)
        time.sleep(grace_s)
    finally:
        for proc in processes:
            if proc.stdin:
                try:
                    proc.stdin.close()
                except OSError:
                    pass
        for proc in processes:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        for thread in threads:
            thread.join(timeout=5)
    fatal = [r.fatal for r in results.values() if r.fatal]
    if fatal:
        raise DdsUnavailableError(f"DDS proof could not run: {fatal[0]}")
    return results
