"""Child processes of the demo: started in their own process groups, restarted one by one, all
stopped on exit or Ctrl-C (nothing is left running, even when Ctrl-C comes again while they stop)."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

#: The signals that end the demo: Ctrl-C, kill/systemd, the terminal closing.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass
class ManagedProcess:
    """One command the demo keeps running, with its log file."""

    name: str
    argv: tuple[str, ...]
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0

    def start(self) -> None:
        """Start (or start again) the command, appending to its log."""
        handle = self.log.open("ab")
        try:
            self.proc = subprocess.Popen(list(self.argv), env=self.env, stdout=handle, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        finally:
            handle.close()

    def running(self) -> bool:
        """Whether the process is alive."""
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout_s: float = 8.0) -> None:
        """SIGINT the process group, then SIGKILL what is left after ``timeout_s``."""
        if self.proc is None or self.proc.poll() is not None:
            return
        for sig, wait in ((signal.SIGINT, timeout_s), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.proc.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def kill(self) -> None:
        """SIGKILL the process group now, without waiting."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@dataclass
class ProcessGroup:
    """All processes of the demo by name."""

    log_dir: Path
    processes: dict[str, ManagedProcess] = field(default_factory=dict)

    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str]) -> ManagedProcess:
        """Start a named process (its log is ``<log_dir>/<name>.log``)."""
        safe = name.strip("/").replace("/", "_") or "process"
        managed = ManagedProcess(name, tuple(argv), dict(env), self.log_dir / f"{safe}.log")
        managed.start()
        self.processes[name] = managed
        return managed

    def restart(self, name: str) -> None:
        """Stop and start one process while the others keep running (rolling restart)."""
        managed = self.processes[name]
        managed.stop()
        managed.start()
        managed.restarts += 1

    def stop(self, name: str) -> None:
        """Stop one process and forget it (known until stopped: :meth:`kill_all` reaches it meanwhile)."""
        managed = self.processes.get(name)
        if managed is not None:
            managed.stop()
            self.processes.pop(name, None)

    def stop_all(self) -> None:
        """Stop every process, newest first."""
        for name in reversed(list(self.processes)):
            self.stop(name)

    def kill_all(self) -> None:
        """SIGKILL every process group at once."""
        for managed in list(self.processes.values()):
            managed.kill()

    def shutdown(self, first: Callable[[], None] | None = None) -> None:
        """Run ``first`` (closing the demo's own node), then stop every process, such that nothing is
        left behind: a Ctrl-C, SIGTERM or SIGHUP arriving meanwhile (a user pressing Ctrl-C twice)
        kills every process group at once instead of interrupting the stop and orphaning the rest
        (they run in sessions of their own, out of reach of the terminal's Ctrl-C)."""

        def hurry(signum: int, frame: object) -> None:
            self.kill_all()

        previous = {}
        try:
            for sig in STOP_SIGNALS:
                previous[sig] = signal.signal(sig, hurry)
        except ValueError:  # not the main thread: no handlers to install, the stop itself still runs
            pass
        try:
            if first is not None:
                first()
            self.stop_all()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
