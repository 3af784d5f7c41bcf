"""The real supervisor process serves Prometheus metrics that agree with its own report."""

from __future__ import annotations

import socket
import time
import urllib.request
from pathlib import Path

from node_helpers import CONTROLS, WORKCELL, report_json
from prometheus_client.parser import text_string_to_metric_families

TIMEOUT = 25.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_endpoint_matches_the_report(start_node, listener, healthy_keystore: Path) -> None:
    port = _free_port()
    sup = start_node("supervisor", controls=str(CONTROLS), period_s=0.5, metrics_port=port,
                     keystore=str(healthy_keystore))
    rep = start_node("health_reporter", keystore=str(healthy_keystore), policy=str(WORKCELL), period_s=0.5)

    deadline = time.monotonic() + TIMEOUT
    samples: dict = {}
    report = None
    while time.monotonic() < deadline:
        try:
            samples = _scrape(port)
        except OSError:
            time.sleep(0.5)
            continue
        days = [v for (name, labels), v in samples.items() if name == "cobot_cert_days_left"]
        if days:
            response = listener.call_trigger("/supervisor/get_report", 10.0)
            report = report_json(response) if response is not None and response.success else None
            samples = _scrape(port)
            if report is not None and samples.get(("cobot_posture_score", ())) == report["score"]:
                break
        time.sleep(0.5)
    assert report is not None, sup.output() + rep.output()

    assert samples[("cobot_posture_score", ())] == report["score"]
    levels = {dict(labels)["control"]: value for (name, labels), value in samples.items()
              if name == "cobot_control_level"}
    for control in report["controls"]:
        assert levels[control["control"]] == {"OK": 0, "WARN": 1, "ERROR": 2, "STALE": 3}[control["level"]]
    arm = samples[("cobot_cert_days_left", (("enclave", "/cell/arm_driver"),))]
    assert 88 <= arm <= 90
    assert samples[("cobot_stale_reporters", ())] == 0
