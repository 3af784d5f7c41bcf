"""Real DDS discovery across the gateway: Cyclone DDS participants in the cell and supervisory
namespaces, configured with the RENDERED Cyclone snippets, exchange data through the rendered
ruleset; an enterprise participant that names them as peers hears nothing and is heard by no one.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cobot_security.network.load import load_network
from cobot_security.network.render import render_cyclonedds, render_nftables

pytestmark = pytest.mark.dds

REPO = Path(__file__).resolve().parents[2]
DISCOVERY_BOUND_S = 25.0
ENTERPRISE_GRACE_S = 4.0


def _enterprise_config(address: str, peers: tuple[str, ...]) -> str:
    """What an intruder on the office network would try: unicast peers straight at the cell."""
    peer_xml = "".join(f'<Peer address="{p}"/>' for p in peers)
    return (f'<CycloneDDS><Domain id="any"><General><Interfaces><NetworkInterface address="{address}"/>'
            f"</Interfaces><AllowMulticast>false</AllowMulticast></General><Discovery>"
            f"<ParticipantIndex>auto</ParticipantIndex><MaxAutoParticipantIndex>9</MaxAutoParticipantIndex>"
            f"<Peers>{peer_xml}</Peers></Discovery></Domain></CycloneDDS>")


def test_dds_discovery_follows_the_conduits(topology, network_file, tmp_path):
    network = load_network(network_file)
    ruleset = tmp_path / "cobot_cell.nft"
    ruleset.write_text(render_nftables(network), encoding="utf-8")
    subprocess.run(["ip", "netns", "exec", topology.gateway, "nft", "-f", str(ruleset)], check=True,
                   capture_output=True, timeout=10)
    hosts = {host.name: host for _, host in network.hosts()}
    configs = {
        "cell_pc": render_cyclonedds(network, hosts["cell_pc"]),
        "mes_bridge": render_cyclonedds(network, hosts["mes_bridge"]),
        "office_pc": _enterprise_config("10.200.3.30", ("10.200.1.20", "10.200.2.10")),
    }
    zones = {"cell_pc": "cell", "mes_bridge": "supervisory", "office_pc": "enterprise"}
    procs: dict[str, subprocess.Popen] = {}
    received: dict[str, set[str]] = {name: set() for name in configs}
    try:
        for name, xml in configs.items():
            path = tmp_path / f"{name}.xml"
            path.write_text(xml, encoding="utf-8")
            env = dict(os.environ, CYCLONEDDS_URI=path.as_uri(),
                       PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
            spec = {"name": name, "domain_id": 0, "writers": ["rt/cell_status"], "readers": ["rt/cell_status"],
                    "deadline_s": DISCOVERY_BOUND_S + ENTERPRISE_GRACE_S + 10, "period_s": 0.2}
            procs[name] = topology.popen(zones[name], [sys.executable, "-m", "cobot_security.dds.agent",
                                                       json.dumps(spec)], env=env)
        start = time.monotonic()
        grace_until = None
        while time.monotonic() - start < DISCOVERY_BOUND_S + ENTERPRISE_GRACE_S:
            streams = {p.stdout: n for n, p in procs.items() if p.poll() is None}
            ready, _, _ = select.select(list(streams), [], [], 0.5)
            for stream in ready:
                line = stream.readline()
                if line.strip().startswith("{"):
                    event = json.loads(line)
                    if event.get("event") == "received":
                        received[streams[stream]].add(event["sender"])
                    assert event.get("event") != "fatal", event
            if grace_until is None and "mes_bridge" in received["cell_pc"] and "cell_pc" in received["mes_bridge"]:
                grace_until = time.monotonic() + ENTERPRISE_GRACE_S
            if grace_until is not None and time.monotonic() > grace_until:
                break
    finally:
        for proc in procs.values():
            try:
                proc.stdin.close()
            except OSError:
                pass
        for proc in procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
    assert "mes_bridge" in received["cell_pc"], received
    assert "cell_pc" in received["mes_bridge"], received
    assert received["office_pc"] == set(), received
    assert "office_pc" not in received["cell_pc"] | received["mes_bridge"], received
