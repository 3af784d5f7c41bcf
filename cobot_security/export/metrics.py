"""The cell's posture as Prometheus gauges on a private registry, and the scrape endpoint.

Metric names (a contract for dashboards, see docs/export.md):

* ``cobot_posture_score`` 0–100, priority-weighted (posture.evaluate.score_results)
* ``cobot_posture_level`` overall Level (0 OK, 1 WARN, 2 ERROR, 3 STALE)
* ``cobot_control_level{control,priority}`` one Level per control
* ``cobot_cert_days_left{enclave}`` days to expiry from the cert_expiry findings (lowest per enclave)
* ``cobot_stale_reporters`` reporters that went silent
* ``cobot_open_incidents`` incidents not yet closed

A fresh ``CollectorRegistry`` is used instead of the global one, so that tests and several nodes
in one process never collide and no process/platform collectors are exported by surprise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Gauge, start_http_server

from cobot_security.checks import CERT_EXPIRY
from cobot_security.errors import InputError
from cobot_security.posture.evaluate import PostureReport
from cobot_security.status import Finding, Level

__all__ = ["MetricsGauges", "MetricsServer", "cert_days_left", "create_metrics", "serve_metrics", "update_metrics"]


@dataclass
class MetricsGauges:
    """The registry and its gauges; ``_labels`` remembers exported label sets to drop vanished ones."""

    registry: CollectorRegistry
    posture_score: Gauge
    posture_level: Gauge
    control_level: Gauge
    cert_days_left: Gauge
    stale_reporters: Gauge
    open_incidents: Gauge
    _controls: set[tuple[str, str]] = field(default_factory=set)
    _enclaves: set[str] = field(default_factory=set)


def create_metrics() -> MetricsGauges:
    """A new private registry holding the cobot_* gauges (score 0, level ERROR until a report: fail closed)."""
    registry = CollectorRegistry(auto_describe=True)
    gauges = MetricsGauges(
        registry=registry,
        posture_score=Gauge("cobot_posture_score", "Priority-weighted posture score 0-100", registry=registry),
        posture_level=Gauge("cobot_posture_level", "Overall posture level (0 OK, 1 WARN, 2 ERROR, 3 STALE)",
                            registry=registry),
        control_level=Gauge("cobot_control_level", "Level of one control (0 OK, 1 WARN, 2 ERROR, 3 STALE)",
                            ["control", "priority"], registry=registry),
        cert_days_left=Gauge("cobot_cert_days_left", "Days until the enclave certificate expires",
                             ["enclave"], registry=registry),
        stale_reporters=Gauge("cobot_stale_reporters", "Health reporters that went silent", registry=registry),
        open_incidents=Gauge("cobot_open_incidents", "Incidents not yet closed", registry=registry),
    )
    gauges.posture_level.set(int(Level.ERROR))  # no evaluation yet is not a pass
    return gauges


def cert_days_left(findings: Sequence[Finding]) -> dict[str, int]:
    """Days left per enclave from cert_expiry findings; the lowest wins when several report one enclave.

    Findings without a parseable integer ``days_left`` are skipped (they fail their control anyway).
    """
    days: dict[str, int] = {}
    for finding in findings:
        if finding.check != CERT_EXPIRY:
            continue
        raw = finding.value("days_left")
        try:
            value = int(raw) if raw is not None else None
        except ValueError:
            value = None
        if value is None:
            continue
        enclave = finding.value("enclave") or finding.subject
        days[enclave] = min(value, days.get(enclave, value))
    return days


def update_metrics(
    gauges: MetricsGauges,
    report: PostureReport | None,
    findings: Sequence[Finding],
    stale: int,
    open_incidents: int,
) -> None:
    """Set every gauge from our own data; label sets that vanished are removed.

    A missing report (catalog not loaded) exports score 0 and level ERROR: fail closed.
    """
    if report is None:
        gauges.posture_score.set(0)
        gauges.posture_level.set(int(Level.ERROR))
        controls: dict[tuple[str, str], int] = {}
    else:
        gauges.posture_score.set(report.score)
        gauges.posture_level.set(int(report.level))
        controls = {(r.control_id, r.priority.value): int(r.level) for r in report.results}
    for labels, level in controls.items():
        gauges.control_level.labels(*labels).set(level)
    for labels in gauges._controls - controls.keys():
        gauges.control_level.remove(*labels)
    gauges._controls = set(controls)
    days = cert_days_left(findings)
    for enclave, value in days.items():
        gauges.cert_days_left.labels(enclave).set(value)
    for enclave in gauges._enclaves - days.keys():
        gauges.cert_days_left.remove(enclave)
    gauges._enclaves = set(days)
    gauges.stale_reporters.set(stale)
    gauges.open_incidents.set(open_incidents)


@dataclass
class MetricsServer:
    """A running scrape endpoint: where it listens, and ``close()`` to stop it."""

    server: object
    thread: object
    addr: str
    port: int

    def close(self) -> None:
        """Stop serving and free the port."""
        self.server.shutdown()  # type: ignore[attr-defined]
        self.server.server_close()  # type: ignore[attr-defined]


def serve_metrics(gauges: MetricsGauges, port: int, addr: str = "127.0.0.1") -> MetricsServer:
    """Serve ``/metrics`` of the private registry on ``addr:port`` (port 0 picks a free one).

    Loopback by default: exposing posture to the plant network is the operator's explicit choice.

    :raises InputError: when the port is out of range or cannot be bound.
    """
    if not 0 <= port <= 65535:
        raise InputError(None, "metrics_port", "a port in 0..65535", repr(port))
    try:
        server, thread = start_http_server(port, addr=addr, registry=gauges.registry)
    except OSError as exc:
        raise InputError(None, "metrics_port", f"a free port on {addr}", f"{port}: {exc.strerror or exc}") from None
    return MetricsServer(server=server, thread=thread, addr=addr, port=int(server.server_address[1]))
