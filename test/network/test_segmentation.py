"""Proof with real traffic: the rendered ruleset, loaded into a gateway namespace, forwards every
conduit and drops everything else (issue 6, part 3); `network check` reads the same live ruleset.
"""

from __future__ import annotations

import json
import select
import subprocess
import sys
from pathlib import Path

import pytest

from cobot_security.cli.main import main
from cobot_security.network.check import check_ruleset, read_live_ruleset
from cobot_security.network.load import load_network
from cobot_security.network.model import NetworkPolicy
from cobot_security.network.render import render_nftables
from cobot_security.network.rtps import compute_rtps_ports
from cobot_security.status import Level

PYTHON = sys.executable

LISTENER = r"""
import socket, sys
proto, port, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
s = socket.socket(socket.AF_INET, kind)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", port))
if proto == "tcp":
    s.listen(4)
s.settimeout(timeout)
print("ready", flush=True)
try:
    if proto == "tcp":
        conn, peer = s.accept()
    else:
        _, peer = s.recvfrom(2048)
    print("got", peer[0], flush=True)
except socket.timeout:
    print("none", flush=True)
"""

CLIENT = r"""
import socket, sys, time
proto, source, target, port, timeout = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
s = socket.socket(socket.AF_INET, kind)
s.bind((source, 0))
s.settimeout(timeout)
if proto == "tcp":
    try:
        s.connect((target, port))
    except OSError as exc:
        print("failed", type(exc).__name__, flush=True)
        sys.exit(1)
    print("connected", flush=True)
else:
    for _ in range(5):
        s.sendto(b"rtps-probe", (target, port))
        time.sleep(0.1)
"""

HOST_ZONE = {"cell_pc": "cell", "arm_controller": "cell", "mes_bridge": "supervisory", "office_pc": "enterprise"}
ADDRESS = {"cell_pc": "10.200.1.20", "arm_controller": "10.200.1.10", "mes_bridge": "10.200.2.10",
           "office_pc": "10.200.3.30"}


def _readline(proc: subprocess.Popen, timeout_s: float) -> str:
    ready, _, _ = select.select([proc.stdout], [], [], timeout_s)
    return proc.stdout.readline().strip() if ready else ""


def probe(topology, proto: str, source: str, target: str, port: int) -> bool:
    """Whether a TCP connect / UDP datagrams from host ``source`` reach a listener on ``target:port``."""
    listen_timeout = 3.0
    listener = topology.popen(HOST_ZONE[target], [PYTHON, "-c", LISTENER, proto, str(port), str(listen_timeout)])
    try:
        assert _readline(listener, 10.0) == "ready", listener.stderr.read() if listener.poll() is not None else ""
        subprocess.run(topology.exec_prefix(HOST_ZONE[source])
                       + [PYTHON, "-c", CLIENT, proto, ADDRESS[source], ADDRESS[target], str(port), "1.5"],
                       capture_output=True, timeout=15)
        result = _readline(listener, listen_timeout + 5.0)
    finally:
        listener.kill()
        listener.wait(timeout=5)
    return result == f"got {ADDRESS[source]}"


@pytest.fixture(scope="module")
def network(network_file: Path) -> NetworkPolicy:
    """The test network loaded by the package's own loader."""
    return load_network(network_file)


@pytest.fixture(scope="module")
def gateway(topology, network: NetworkPolicy, tmp_path_factory: pytest.TempPathFactory):
    """The gateway namespace with the RENDERED ruleset loaded (after proving routing works without it)."""
    # Without a ruleset the gateway forwards everything: a later drop is the ruleset's doing.
    assert probe(topology, "tcp", "office_pc", "arm_controller", 29999), "routing through gw is broken"
    ruleset = tmp_path_factory.mktemp("gw") / "cobot_cell.nft"
    ruleset.write_text(render_nftables(network), encoding="utf-8")
    subprocess.run(["ip", "netns", "exec", topology.gateway, "nft", "-f", str(ruleset)], check=True,
                   capture_output=True, timeout=10)
    return ruleset


def _dds_ports() -> tuple[int, int]:
    ports = compute_rtps_ports(0, 10).unicast_ports
    return ports[0], ports[-1]


ALLOWED = [
    ("opcua_sup_to_cell_pc", "tcp", "mes_bridge", "cell_pc", 4840),
    ("https_ent_to_mes", "tcp", "office_pc", "mes_bridge", 443),
    *[("dds_cell_to_sup", "udp", "cell_pc", "mes_bridge", p) for p in _dds_ports()],
    *[("dds_sup_to_cell", "udp", "mes_bridge", "cell_pc", p) for p in _dds_ports()],
]
DENIED = [
    ("enterprise to cell DDS", "udp", "office_pc", "cell_pc", 7410),
    ("enterprise to controller dashboard", "tcp", "office_pc", "arm_controller", 29999),
    ("enterprise to cell PC OPC UA", "tcp", "office_pc", "cell_pc", 4840),
    ("supervisory to controller dashboard", "tcp", "mes_bridge", "arm_controller", 29999),
    ("cell to enterprise", "tcp", "cell_pc", "office_pc", 443),
    ("DDS beyond the participant range", "udp", "cell_pc", "mes_bridge", 7430),
    ("controller (not cell_pc) DDS to supervisory", "udp", "arm_controller", "mes_bridge", 7410),
]


@pytest.mark.parametrize("conduit,proto,source,target,port", ALLOWED, ids=[f"{a[0]}-{a[4]}" for a in ALLOWED])
def test_conduit_passes(topology, gateway, conduit, proto, source, target, port):
    assert probe(topology, proto, source, target, port), f"conduit {conduit} blocked {proto}/{port}"


@pytest.mark.parametrize("label,proto,source,target,port", DENIED, ids=[d[0].replace(" ", "_") for d in DENIED])
def test_everything_else_is_dropped(topology, gateway, label, proto, source, target, port):
    assert not probe(topology, proto, source, target, port), f"{label} passed the gateway"


def test_live_ruleset_check_ok_then_detects_a_missing_conduit(topology, gateway, network, network_file, tmp_path):
    live = read_live_ruleset(topology.gateway)
    assert check_ruleset(network, live)[0].level is Level.OK
    record = tmp_path / "network_check.json"
    assert main(["network", "check", "--network", str(network_file), "--netns", topology.gateway,
                 "--record", str(record)]) == 0
    assert json.loads(record.read_text())["findings"][0]["level"] == "OK"
    handle = next(item["rule"]["handle"] for item in json.loads(live)["nftables"]
                  if item.get("rule", {}).get("comment") == "conduit:https_ent_to_mes")
    try:
        subprocess.run(["ip", "netns", "exec", topology.gateway, "nft", "delete", "rule", "inet", "cobot_cell",
                        "forward", "handle", str(handle)], check=True, capture_output=True, timeout=10)
        findings = check_ruleset(network, read_live_ruleset(topology.gateway))
        blocked = not probe(topology, "tcp", "office_pc", "mes_bridge", 443)
        assert main(["network", "check", "--network", str(network_file), "--netns", topology.gateway,
                     "--record", str(record)]) == 1
    finally:
        subprocess.run(["ip", "netns", "exec", topology.gateway, "nft", "-f", str(gateway)], check=True,
                       capture_output=True, timeout=10)
    assert findings[0].level is Level.ERROR
    assert findings[0].value("conduits_missing") == "https_ent_to_mes"
    assert blocked, "removing the conduit's rule did not close it"
