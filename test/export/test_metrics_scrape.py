"""The metrics endpoint on loopback: scrape over HTTP, parse the exposition, check the values."""

from __future__ import annotations

import socket
import urllib.request

import pytest
from export_builders import findings, report
from prometheus_client.parser import text_string_to_metric_families
from rsyslog_daemon import free_port

from cobot_security.errors import InputError
from cobot_security.export.metrics import create_metrics, serve_metrics, update_metrics
from cobot_security.status import Level


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """name + sorted labels → value, from a real HTTP scrape of 127.0.0.1:port/metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        assert response.status == 200
        text = response.read().decode("utf-8")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_scrape_holds_the_metrics_with_the_right_values() -> None:
    gauges = create_metrics()
    server = serve_metrics(gauges, 0)
    try:
        rep = report(cert_level=Level.ERROR, stale=2)
        update_metrics(gauges, rep, findings(cert_level=Level.ERROR, stale=2), stale=2, open_incidents=1)
        got = scrape(server.port)
    finally:
        server.close()
    assert server.addr == "127.0.0.1"
    # Only key_protection (high, weight 3) passes out of 4 + 3 + 2: round(100 * 3 / 9) = 33.
    assert got[("cobot_posture_score", ())] == rep.score == 33
    assert got[("cobot_posture_level", ())] == Level.STALE
    assert got[("cobot_control_level", (("control", "cert_lifetime"), ("priority", "critical")))] == Level.ERROR
    assert got[("cobot_control_level", (("control", "key_protection"), ("priority", "high")))] == Level.OK
    assert got[("cobot_control_level", (("control", "reporters_alive"), ("priority", "medium")))] == Level.STALE
    assert got[("cobot_cert_days_left", (("enclave", "/cell/arm"),))] == 12
    assert got[("cobot_cert_days_left", (("enclave", "/cell/gripper"),))] == 90
    assert got[("cobot_stale_reporters", ())] == 2
    assert got[("cobot_open_incidents", ())] == 1
    assert not any(name.startswith("process_") for name, _ in got)  # private registry only


def test_port_in_use_is_an_input_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(InputError, match="metrics_port"):
            serve_metrics(create_metrics(), port)


def test_closed_server_frees_the_port() -> None:
    port = free_port(socket.SOCK_STREAM)
    first = serve_metrics(create_metrics(), port)
    first.close()
    second = serve_metrics(create_metrics(), port)
    second.close()
    assert second.port == port
