"""The demo's children are never left running: a second Ctrl-C while they stop kills them instead.

The demo starts every child in a session of its own (so the terminal's Ctrl-C reaches the demo
only, which then stops them in order).  A user who presses Ctrl-C again during that stop, or a
service manager sending SIGTERM after SIGINT, must not orphan the children that were not stopped
yet.  Real processes: a parent running ``ProcessGroup.shutdown`` over children that ignore SIGINT
(the slow path: each would take its full stop timeout), interrupted again mid-stop.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

PARENT = r"""
import sys, time
from pathlib import Path
from cobot_security.demo.processes import ProcessGroup

group = ProcessGroup(Path(sys.argv[1]))
child = [sys.executable, "-c",
         "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); print('up', flush=True); time.sleep(120)"]
for n in range(3):
    group.start(f"child{n}", child, {})
while not all((Path(sys.argv[1]) / f"child{n}.log").read_text() for n in range(3)):
    time.sleep(0.05)
try:
    print(" ".join(str(m.proc.pid) for m in group.processes.values()), flush=True)
    time.sleep(120)
except KeyboardInterrupt:
    print("stopping", flush=True)
finally:
    group.shutdown()
print("done", flush=True)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for the user; its parent (init, after the orphaning) reaps it.
    stat = Path(f"/proc/{pid}/stat").read_text() if Path(f"/proc/{pid}/stat").exists() else ""
    return bool(stat) and stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.parametrize("second", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_second_interrupt_during_the_stop_kills_every_child(tmp_path: Path, second: signal.Signals) -> None:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                              env=env)
    pids: list[int] = []
    try:
        assert parent.stdout is not None
        pids = [int(p) for p in parent.stdout.readline().split()]
        assert len(pids) == 3
        parent.send_signal(signal.SIGINT)  # the first Ctrl-C: a stop in order, 8 s per child here
        assert parent.stdout.readline().strip() == "stopping"
        time.sleep(0.5)  # inside the stop of the first child
        assert any(_alive(pid) for pid in pids)
        parent.send_signal(second)
        out, _ = parent.communicate(timeout=20)
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [pid for pid in pids if _alive(pid)], "children left running"
        assert parent.returncode == 0 and out.strip() == "done"  # the stop completed, not cut short
    finally:
        parent.kill()
        for pid in pids:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
