"""A real rsyslogd on loopback for the export tests (helpers; the fixture is in conftest.py).

imudp, imtcp and an imuxsock socket of its own.

The daemon runs in the foreground (-n) with a temporary config, work directory and pid file, writes
every message through a template that keeps MSGID, PRI parts, the structured data and MSG, and is
always terminated.  Readiness is proven, not assumed: a probe message must arrive over each input.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

RSYSLOGD = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
#: Fields of one output line, split on the unit separator (cannot occur in our messages).
FIELDS = ("msgid", "appname", "facility", "severity", "hostname", "sd", "msg")
_SEP = "\x1f"


def free_port(kind: int) -> int:
    """A port on 127.0.0.1 free for ``kind`` (SOCK_STREAM / SOCK_DGRAM) right now."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Rsyslog:
    """A running rsyslogd: its inputs and the file its template writes."""

    udp_port: int
    tcp_port: int
    unix_path: Path
    out: Path
    process: subprocess.Popen[bytes]

    def records(self) -> list[dict[str, str]]:
        """Every line received so far, as a dict of :data:`FIELDS`."""
        if not self.out.exists():
            return []
        rows = []
        for line in self.out.read_text(encoding="utf-8", errors="replace").splitlines():
            parts = line.split(_SEP)
            if len(parts) == len(FIELDS):
                rows.append(dict(zip(FIELDS, parts)))
        return rows

    def wait_for(self, predicate: Callable[[dict[str, str]], bool], count: int = 1,
                 timeout: float = 10.0) -> list[dict[str, str]]:
        """The records matching ``predicate`` once there are ``count`` of them (bounded wait)."""
        deadline = time.monotonic() + timeout
        tick = threading.Event()
        while True:
            found = [r for r in self.records() if predicate(r)]
            if len(found) >= count or time.monotonic() >= deadline:
                return found
            if self.process.poll() is not None:
                raise AssertionError(f"rsyslogd exited with {self.process.returncode}")
            tick.wait(0.05)


def rsyslog_config(work: Path, udp: int, tcp: int, unix_path: Path, out: Path) -> str:
    fields = _SEP.join(("%msgid%", "%app-name%", "%syslogfacility-text%", "%syslogseverity%",
                        "%hostname%", "%structured-data%", "%msg%"))
    return f"""
global(workDirectory="{work}")
module(load="imudp")
module(load="imtcp")
module(load="imuxsock" SysSock.Use="off")
input(type="imudp" address="127.0.0.1" port="{udp}")
input(type="imtcp" address="127.0.0.1" port="{tcp}")
input(type="imuxsock" Socket="{unix_path}" UseSpecialParser="off" ParseHostname="on" CreatePath="on")
template(name="cobot" type="string" string="{fields}\\n")
*.* action(type="omfile" file="{out}" template="cobot")
"""


def probe_ready(daemon: Rsyslog) -> None:
    """Send a probe over each input until it is written: proves rsyslogd is listening."""
    deadline = time.monotonic() + 15.0
    pending = {"udp", "tcp", "unix"}
    tick = threading.Event()
    while pending and time.monotonic() < deadline:
        for kind in sorted(pending):
            msg = f"<134>1 2026-01-01T00:00:00Z probehost probe - probe - ready-{kind}".encode()
            try:
                if kind == "udp":
                    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                        s.sendto(msg, ("127.0.0.1", daemon.udp_port))
                elif kind == "tcp":
                    with socket.create_connection(("127.0.0.1", daemon.tcp_port), timeout=1) as s:
                        s.sendall(f"{len(msg)} ".encode() + msg)
                else:
                    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
                        s.sendto(msg, str(daemon.unix_path))
            except OSError:
                continue
        tick.wait(0.2)
        seen = {r["msg"] for r in daemon.records()}
        pending = {k for k in pending if f"ready-{k}" not in seen}
        if daemon.process.poll() is not None:
            break
    if pending:
        raise AssertionError(f"rsyslogd not ready on {sorted(pending)} "
                             f"(exit {daemon.process.poll()}); log: {daemon.out.parent / 'rsyslogd.log'}")
