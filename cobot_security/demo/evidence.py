"""The healthy cell's evidence: everything software can show on this machine, made by the demo itself.

* **Attestations**: a demo attestations file in the work directory, every entry saying it is a demo
  statement and not evidence, so that the controls needing a human sign-off can be shown green.
* **Network segmentation**: the cell's ruleset rendered from ``policies/network.yaml``, loaded into
  a gateway namespace between zone namespaces and read back with ``nft`` (``network check``
  evidence). Without root this is not possible here, and the recorded finding says so.
* **Scans**: the cell's hardened OPC UA server and a simulated controller
  (:mod:`cobot_security.demo.cell_services`) on loopback, audited with the package's own scans.

Every result is stored where ``cobot-security network check`` / ``scan`` store theirs, in the
scenario keystore, and the health reporter publishes it like any other evidence.
"""

from __future__ import annotations

import datetime as _dt
import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from cobot_security import checks
from cobot_security.clock import utc_now
from cobot_security.demo.cell_services import CELL_ADDRESS, opcua_url
from cobot_security.demo.processes import ProcessGroup
from cobot_security.keystore.layout import KeystoreLayout
from cobot_security.network.check import GATEWAY_SUBJECT, check_ruleset, read_live_ruleset, record_network_check
from cobot_security.network.load import load_network
from cobot_security.network.namespaces import CellNamespaces, namespaces_unavailable
from cobot_security.network.render import render_nftables
from cobot_security.policy.model import WorkcellPolicy
from cobot_security.posture.catalog import load_controls
from cobot_security.resources import shipped_file
from cobot_security.scan.catalog import load_service_catalog
from cobot_security.scan.opcua import OpcUaRequirements, scan_opcua
from cobot_security.scan.results import store_scan_result
from cobot_security.scan.scanner import ScanLimits
from cobot_security.scan.services import scan_services
from cobot_security.status import Finding, Level

__all__ = ["demo_attestations_text", "gather_evidence", "prove_network", "scan_cell", "start_cell_services",
           "write_demo_attestations"]

DEMO_MARK = "DEMO STATEMENT, not evidence"
SERVICES_READY_S = 30.0


def demo_attestations_text(ids: list[str], today: _dt.date) -> str:
    """An attestations file with one demo entry per id, dated ``today``, valid for a year."""
    entries = [{
        "id": attestation_id,
        "statement": f"{DEMO_MARK}: '{attestation_id}' is signed off only for the cobot-security demo.",
        "attested_by": "DEMO cobot-security demo (nobody signed this off)",
        "date": today.isoformat(),
        "expires": (today + _dt.timedelta(days=365)).isoformat(),
        "evidence": f"{DEMO_MARK}: none; written by `cobot-security demo`",
    } for attestation_id in ids]
    header = (f"# {DEMO_MARK}. Written by `cobot-security demo` so that the controls needing a human\n"
              "# sign-off can be shown green in the demo. Never use this file for a real cell.\n")
    return header + yaml.safe_dump({"version": 1, "attestations": entries}, sort_keys=False)


def write_demo_attestations(path: Path, controls_path: Path, today: _dt.date) -> Path:
    """Write the demo attestations for every attestation the controls catalog asks for."""
    catalog = load_controls(controls_path)
    ids = list(dict.fromkeys(a for control in catalog.controls for a in control.attestations))
    path.write_text(demo_attestations_text(ids, today), encoding="utf-8")
    return path


def prove_network(network_path: Path, domain_ids: tuple[int, ...], layout: KeystoreLayout,
                  now: _dt.datetime) -> Finding:
    """Render the ruleset, load it into the cell's namespaces, check it live; record and return the finding."""
    network = load_network(network_path, domain_ids)
    reason = namespaces_unavailable()
    if reason is not None:
        finding = Finding(checks.NETWORK_RULESET, GATEWAY_SUBJECT, Level.ERROR,
                          f"not proven here: {reason}; run the demo as root to render the cell's ruleset and "
                          "check it live in network namespaces", (("evidence", "none (demo not run as root)"),))
    else:
        with CellNamespaces(network, f"cbd{os.getpid() % 100000}") as namespaces:
            namespaces.load_ruleset(render_nftables(network))
            evidence = f"nft -j list ruleset in netns {namespaces.gateway} (demo gateway, rendered from {network_path})"
            finding = check_ruleset(network, read_live_ruleset(namespaces.gateway), evidence)[0]
    record_network_check(layout.network_check, [finding], now)
    return finding


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_cell_services(group: ProcessGroup, argv_prefix: list[str], catalog_path: Path,
                        env: dict[str, str]) -> int:
    """Start :mod:`cobot_security.demo.cell_services` in ``group``; its OPC UA port once it is ready.

    :raises RuntimeError: when it is not ready within :data:`SERVICES_READY_S`.
    """
    port = _free_port()
    controller_ports = [str(p) for p in load_service_catalog(catalog_path).tcp_ports]
    argv = [*argv_prefix, "--opcua-port", str(port), *(a for p in controller_ports for a in ("--controller-port", p))]
    managed = group.start("cell_services", argv, env)
    deadline = time.monotonic() + SERVICES_READY_S
    while time.monotonic() < deadline:
        if managed.log.exists() and "ready" in managed.log.read_text(errors="replace").split():
            return port
        if not managed.running():
            break
        time.sleep(0.2)  # the child prints "ready" once: polling its log is the simplest bounded wait
    raise RuntimeError(f"the demo cell services did not start (see {managed.log})")


def scan_cell(opcua_port: int, catalog_path: Path, layout: KeystoreLayout, now: _dt.datetime,
              say: Callable[[str], None]) -> list[Finding]:
    """Audit the OPC UA server and scan the controller's cell-facing address; store both results."""
    url = opcua_url(opcua_port)
    opcua = scan_opcua(url, now, OpcUaRequirements(), timeout_s=10.0)
    store_scan_result(layout.scans_dir, "opcua", url, opcua, now)
    catalog = load_service_catalog(catalog_path)
    services = scan_services([CELL_ADDRESS], list(catalog.tcp_ports), catalog,
                             ScanLimits(concurrency=8, rate=100.0, timeout_s=0.5))
    store_scan_result(layout.scans_dir, "services", CELL_ADDRESS, services, now)
    for finding in (*opcua, *services):
        say(f"      {finding.level.name:5} {finding.check} {finding.subject}: {finding.message}")
    return [*opcua, *services]


def gather_evidence(work_dir: Path, policy: WorkcellPolicy, keystore: Path, group: ProcessGroup,
                    env: dict[str, str], say: Callable[[str], None]) -> Path:
    """Attestations, network proof and scans for the healthy cell; returns the attestations file."""
    layout, now = KeystoreLayout(keystore), utc_now()
    attestations = write_demo_attestations(work_dir / "demo-attestations.yaml",
                                           shipped_file("policies/posture_controls.yaml"), now.date())
    say(f"      attestations: {attestations} (every entry a {DEMO_MARK})")
    network = prove_network(shipped_file("policies/network.yaml"), policy.domain_ids, layout, now)
    say(f"      network check: {network.level.name} {network.message}")
    catalog = shipped_file("policies/controller_services.yaml")
    port = start_cell_services(group, [sys.executable, "-m", "cobot_security.demo.cell_services"], catalog, env)
    say("      scans of the cell PC's OPC UA server and the simulated controller (loopback):")
    scan_cell(port, catalog, layout, utc_now(), say)
    return attestations
