"""Fixtures for the export tests: a real rsyslogd on loopback (see rsyslog_daemon.py)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from rsyslog_daemon import RSYSLOGD, Rsyslog, free_port, probe_ready, rsyslog_config


@pytest.fixture
def rsyslog(tmp_path: Path) -> Iterator[Rsyslog]:
    """A real rsyslogd on 127.0.0.1 (UDP, TCP) and a private unix socket, stopped afterwards."""
    if not os.path.exists(RSYSLOGD):
        pytest.fail("rsyslogd is required for the export tests (Debian package rsyslog)")
    work = tmp_path / "rsyslog"
    work.mkdir()
    udp, tcp = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_STREAM)
    unix_path, out = work / "log.sock", work / "out.log"
    conf = work / "rsyslog.conf"
    conf.write_text(rsyslog_config(work, udp, tcp, unix_path, out))
    log = open(work / "rsyslogd.log", "wb")
    process = subprocess.Popen([RSYSLOGD, "-n", "-f", str(conf), "-i", str(work / "rsyslogd.pid")],
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    daemon = Rsyslog(udp, tcp, unix_path, out, process)
    try:
        probe_ready(daemon)
        yield daemon
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        log.close()


# The builders shared with the unit tests (test/unit/export/export_builders.py).
import sys as _sys  # noqa: E402

_sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "export"))
