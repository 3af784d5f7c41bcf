"""Alerts, incidents, audit records and posture as RFC 5424 syslog with structured data.

A message is ``<PRI>1 TIMESTAMP HOSTNAME cobot_security PROCID MSGID [cobot@32473 k="v" ...] MSG``
(RFC 5424 §6).  MSGID is one of ``alert``, ``incident``, ``audit``, ``posture``; the SD-ID's
enterprise number is configurable (32473 is the number RFC 5612 reserves for documentation).
PARAM-VALUEs escape ``"``, ``\\`` and ``]`` (§6.3.3).  PRI is facility × 8 + severity, the
facility local4 by default and the severity derived from the :class:`Level`.

:class:`SyslogSender` delivers to a local unix datagram socket (``/dev/log`` style), UDP, or TCP
with octet-counting framing (RFC 6587 §3.4.1).  It never blocks or raises into its caller: events
go to a bounded queue drained by one daemon thread; a full queue or a failed send is counted and
the event dropped (a SIEM outage must not stop the supervisor).
"""

from __future__ import annotations

import datetime as _dt
import queue
import re
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from cobot_security.errors import InputError
from cobot_security.keystore.audit import AuditRecord
from cobot_security.posture.alerts import Transition
from cobot_security.posture.evaluate import PostureReport
from cobot_security.status import Level

__all__ = [
    "APP_NAME",
    "DEFAULT_ENTERPRISE",
    "DEFAULT_FACILITY",
    "FACILITIES",
    "MSGIDS",
    "SyslogEvent",
    "SyslogSender",
    "SyslogTarget",
    "alert_event",
    "audit_event",
    "escape_param_value",
    "format_message",
    "frame_octet_counted",
    "incident_event",
    "parse_syslog_target",
    "posture_event",
    "severity_for",
]

APP_NAME = "cobot_security"
#: RFC 5612 documentation enterprise number; a site sets its own IANA PEN.
DEFAULT_ENTERPRISE = 32473
MSGIDS = ("alert", "incident", "audit", "posture")
#: RFC 5424 §6.2.1 facility codes by name.
FACILITIES: dict[str, int] = {
    "kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7,
    "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11, "ntp": 12, "security": 13, "console": 14,
    "solaris-cron": 15, "local0": 16, "local1": 17, "local2": 18, "local3": 19, "local4": 20,
    "local5": 21, "local6": 22, "local7": 23,
}
DEFAULT_FACILITY = "local4"
#: RFC 5424 severities used here.
SEVERITY_CRITICAL, SEVERITY_ERROR, SEVERITY_WARNING, SEVERITY_NOTICE, SEVERITY_INFO = 2, 3, 4, 5, 6
#: Keep each message inside rsyslog's default maxMessageSize (8 KiB); the MSG part is cut first.
MAX_MESSAGE_BYTES = 8192
_NIL = "-"
_SD_NAME_BAD = re.compile(r'[^\x21-\x7e]|[=\]" ]')


def severity_for(level: Level, critical: bool = False) -> int:
    """Syslog severity of a level: OK info, WARN warning, ERROR/STALE error (crit when ``critical``).

    STALE maps like ERROR because missing evidence is not a pass (status.worst).
    """
    if level == Level.OK:
        return SEVERITY_INFO
    if level == Level.WARN:
        return SEVERITY_WARNING
    return SEVERITY_CRITICAL if critical else SEVERITY_ERROR


def escape_param_value(value: str) -> str:
    """Escape ``\\``, ``"`` and ``]`` as RFC 5424 §6.3.3 requires inside a PARAM-VALUE."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _sd_name(name: str) -> str:
    """An SD-NAME: printable US-ASCII without ``= ] "`` or space, at most 32 characters."""
    clean = _SD_NAME_BAD.sub("_", name)[:32]
    return clean or "_"


def _header_field(value: str, limit: int) -> str:
    """A header field: printable US-ASCII, no spaces, at most ``limit`` chars, NILVALUE when empty."""
    clean = re.sub(r"[^\x21-\x7e]", "_", value)[:limit]
    return clean or _NIL


def _timestamp(now: _dt.datetime) -> str:
    if now.tzinfo is None:
        raise InputError(None, "now", "a timezone-aware time", "a naive datetime")
    utc = now.astimezone(_dt.timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond:06d}Z"


@dataclass(frozen=True)
class SyslogEvent:
    """One event to export: its MSGID, severity, human text and structured-data parameters."""

    msgid: str
    severity: int
    message: str
    params: tuple[tuple[str, str], ...] = field(default=())
    time: _dt.datetime | None = None


def format_message(
    event: SyslogEvent,
    hostname: str,
    now: _dt.datetime,
    *,
    facility: str = DEFAULT_FACILITY,
    enterprise: int = DEFAULT_ENTERPRISE,
    procid: str = _NIL,
) -> bytes:
    """``event`` as one RFC 5424 message (UTF-8 bytes, no trailing newline).

    The timestamp is ``event.time`` when set, else ``now``.  A message longer than
    :data:`MAX_MESSAGE_BYTES` has its MSG part truncated; the structured data is kept.

    :raises InputError: for an unknown facility or MSGID, a bad severity or a naive time.
    """
    if facility not in FACILITIES:
        raise InputError(None, "facility", "one of " + ", ".join(FACILITIES), repr(facility))
    if event.msgid not in MSGIDS:
        raise InputError(None, "msgid", "one of " + ", ".join(MSGIDS), repr(event.msgid))
    if not 0 <= event.severity <= 7:
        raise InputError(None, "severity", "0..7", repr(event.severity))
    pri = FACILITIES[facility] * 8 + event.severity
    params = "".join(f' {_sd_name(k)}="{escape_param_value(v)}"' for k, v in event.params)
    sd = f"[cobot@{int(enterprise)}{params}]"
    header = " ".join((
        f"<{pri}>1", _timestamp(event.time or now), _header_field(hostname, 255), APP_NAME,
        _header_field(procid, 128), event.msgid, sd,
    ))
    head = header.encode("utf-8")
    body = event.message.encode("utf-8")
    room = MAX_MESSAGE_BYTES - len(head) - 1
    if len(body) > room:
        body = body[:max(room, 0)].decode("utf-8", "ignore").encode("utf-8")
    return head + b" " + body if body else head


def frame_octet_counted(message: bytes) -> bytes:
    """RFC 6587 §3.4.1 octet-counting frame: ``MSG-LEN SP SYSLOG-MSG``."""
    return str(len(message)).encode("ascii") + b" " + message


@dataclass(frozen=True)
class SyslogTarget:
    """Where to send: ``udp``/``tcp`` with host and port, or ``unix`` with a socket path."""

    scheme: str
    host: str = ""
    port: int = 0
    path: str = ""

    def __str__(self) -> str:
        if self.scheme == "unix":
            return f"unix://{self.path}"
        return f"{self.scheme}://{self.host}:{self.port}"


def parse_syslog_target(text: str) -> SyslogTarget | None:
    """``udp://host:port``, ``tcp://host:port`` or ``unix:///dev/log``; empty means export off.

    The port defaults to 514 (UDP and TCP alike, as rsyslog does).

    :raises InputError: for another scheme, a missing host or path, or a bad port.
    """
    text = text.strip()
    if not text:
        return None
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme == "unix":
        path = parts.path or parts.netloc
        if not path.startswith("/"):
            raise InputError(None, "syslog_target", "unix:///absolute/socket/path", repr(text))
        return SyslogTarget("unix", path=path)
    if scheme not in ("udp", "tcp"):
        raise InputError(None, "syslog_target", "udp://host:port, tcp://host:port or unix:///path", repr(text))
    try:
        port = parts.port or 514
    except ValueError:
        raise InputError(None, "syslog_target", "a port in 1..65535", repr(text)) from None
    if not parts.hostname:
        raise InputError(None, "syslog_target", f"{scheme}://host:port", repr(text))
    return SyslogTarget(scheme, host=parts.hostname, port=port)


class SyslogSender:
    """Send formatted events to one target from a daemon thread; never blocks, never raises.

    ``send`` enqueues (dropping and counting when the queue of ``queue_size`` is full); the thread
    formats, connects lazily, reconnects after a failure on the next event, and counts what it sent
    and what it dropped.  ``close`` drains what is queued for up to ``timeout`` seconds.
    """

    def __init__(
        self,
        target: SyslogTarget,
        hostname: str,
        *,
        facility: str = DEFAULT_FACILITY,
        enterprise: int = DEFAULT_ENTERPRISE,
        procid: str = _NIL,
        queue_size: int = 1000,
        connect_timeout_s: float = 2.0,
    ) -> None:
        """Validate the options and start the sender thread.

        :raises InputError: for an unknown facility or a queue size below 1.
        """
        if facility not in FACILITIES:
            raise InputError(None, "syslog_facility", "one of " + ", ".join(FACILITIES), repr(facility))
        if queue_size < 1:
            raise InputError(None, "queue_size", "at least 1", repr(queue_size))
        self.target = target
        self._hostname = hostname
        self._facility = facility
        self._enterprise = enterprise
        self._procid = procid
        self._timeout = connect_timeout_s
        self._queue: queue.Queue[tuple[SyslogEvent, _dt.datetime] | None] = queue.Queue(maxsize=queue_size)
        self._sock: socket.socket | None = None
        self._count_lock = threading.Lock()  # send() and the sender thread both count drops
        self.sent = 0
        self.dropped = 0
        self.last_error = ""
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"syslog-{target.scheme}", daemon=True)
        self._thread.start()

    def send(self, event: SyslogEvent, now: _dt.datetime) -> bool:
        """Queue ``event`` stamped ``now``; False (and counted as dropped) when full or closed."""
        try:
            if self._closed:
                raise queue.Full
            self._queue.put_nowait((event, now))
        except queue.Full:
            self._drop()
            return False
        return True

    def _drop(self) -> None:
        with self._count_lock:
            self.dropped += 1

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every queued event was handled (sent or dropped); False on timeout."""
        done = threading.Event()
        deadline = time.monotonic() + timeout  # a duration, not a wall-clock fact
        # queue.join has no timeout: poll unfinished_tasks on a short Event wait instead.
        while self._queue.unfinished_tasks:
            if time.monotonic() >= deadline:
                return False
            done.wait(0.01)
        return True

    def close(self, timeout: float = 2.0) -> None:
        """Send what is queued (up to ``timeout`` s), stop the thread and close the socket."""
        if self._closed:
            return
        self.flush(timeout)
        self._closed = True
        try:
            self._queue.put_nowait(None)
        except queue.Full:
            pass
        self._thread.join(timeout)
        self._disconnect()

    # -- sender thread --------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                self._deliver(*item)
            finally:
                self._queue.task_done()

    def _deliver(self, event: SyslogEvent, now: _dt.datetime) -> None:
        try:
            message = format_message(event, self._hostname, now, facility=self._facility,
                                     enterprise=self._enterprise, procid=self._procid)
        except Exception as exc:  # noqa: BLE001 - a bad event is dropped, not raised into anyone
            self._drop()
            self.last_error = f"format: {exc}"
            return
        for _attempt in (1, 2):  # one reconnect: a TCP peer may have closed an idle connection
            try:
                self._write(message)
                self.sent += 1
                return
            except OSError as exc:
                self.last_error = f"{self.target}: {exc}"
                self._disconnect()
        self._drop()

    def _connect(self) -> socket.socket:
        target = self.target
        if target.scheme == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.connect(target.path)
        elif target.scheme == "udp":
            sock = socket.socket(socket.AF_INET6 if ":" in target.host else socket.AF_INET, socket.SOCK_DGRAM)
            sock.connect((target.host, target.port))
        else:
            sock = socket.create_connection((target.host, target.port), timeout=self._timeout)
        sock.settimeout(self._timeout)
        return sock

    def _write(self, message: bytes) -> None:
        if self._sock is None:
            self._sock = self._connect()
        if self.target.scheme == "tcp":
            self._sock.sendall(frame_octet_counted(message))
        else:
            self._sock.send(message)

    def _disconnect(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
            self._sock = None


def _kv(pairs: Mapping[str, object] | Sequence[tuple[str, object]]) -> tuple[tuple[str, str], ...]:
    items = pairs.items() if isinstance(pairs, Mapping) else pairs
    return tuple((str(k), "" if v is None else str(v)) for k, v in items if v is not None)


def alert_event(transition: Transition, critical: bool = False) -> SyslogEvent:
    """MSGID ``alert``: one confirmed control transition (posture.alerts.Transition)."""
    result = transition.result
    previous = Level(int(transition.previous)).name if transition.previous is not None else None
    current = Level(int(transition.current))
    return SyslogEvent(
        msgid="alert",
        severity=severity_for(current, critical),
        message=f"{result.control_id} {previous or 'NEW'} -> {current.name}: {result.reason}",
        params=_kv((("control", result.control_id), ("priority", result.priority.value),
                    ("level", current.name), ("previous", previous), ("title", result.title),
                    ("references", "; ".join(result.references)))),
    )


def posture_event(report: PostureReport) -> SyslogEvent:
    """MSGID ``posture``: the overall verdict and score, failing controls listed."""
    failing = [r.control_id for r in report.results if r.level in (Level.ERROR, Level.STALE)]
    return SyslogEvent(
        msgid="posture",
        severity=severity_for(report.level),
        message=f"posture {report.level.name} score {report.score}/100"
                + (f"; failing: {', '.join(failing)}" if failing else ""),
        params=_kv((("level", report.level.name), ("score", report.score),
                    ("failing", ",".join(failing)), ("evaluated_at", report.evaluated_at.isoformat()))),
        time=report.evaluated_at,
    )


def audit_event(record: AuditRecord) -> SyslogEvent:
    """MSGID ``audit``: one keystore audit record (names, serials, reasons; never key material)."""
    params: list[tuple[str, object]] = [("seq", record.seq), ("event", record.event), ("enclave", record.subject),
                                        ("time", record.time), ("prev", record.prev), ("mac", record.mac)]
    params += [(f"d_{k}", v) for k, v in sorted(record.details.items())]
    return SyslogEvent(
        msgid="audit",
        severity=SEVERITY_NOTICE,
        message=f"keystore {record.event} {record.subject}".rstrip(),
        params=_kv(params),
    )


def incident_event(
    incident_id: str,
    action: str,
    level: Level,
    message: str,
    details: Mapping[str, object] | None = None,
) -> SyslogEvent:
    """MSGID ``incident``: an incident opened/updated/closed (``action``), with its own details.

    ``details`` carry e.g. trigger, severity, enclave, host; None values are left out.
    """
    params: list[tuple[str, object]] = [("incident", incident_id), ("action", action), ("level", level.name)]
    params += sorted((details or {}).items())
    return SyslogEvent(msgid="incident", severity=severity_for(level, critical=level != Level.OK),
                       message=message, params=_kv(params))
