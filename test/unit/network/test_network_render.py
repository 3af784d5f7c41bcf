"""Rendering: deterministic, one commented accept per conduit, default drop, and nft accepts it."""

import subprocess
from pathlib import Path

import pytest
from lxml import etree

from cobot_security.cli.main import main
from cobot_security.network.load import load_network
from cobot_security.network.render import (
    dds_peers,
    render_conduit_table,
    render_cyclonedds,
    render_files,
    render_nftables,
    render_ros_env,
)

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def network():
    return load_network(REPO / "policies" / "network.yaml")


def test_ruleset_shape(network):
    text = render_nftables(network)
    assert text == render_nftables(load_network(REPO / "policies" / "network.yaml"))
    assert "table inet cobot_cell {" in text
    assert "type filter hook forward priority filter; policy drop;" in text
    rules = [line.strip() for line in text.splitlines() if line.startswith("\t\t")]
    assert rules[1] == "ct state established,related accept"
    conduit_rules = [r for r in rules if 'comment "conduit:' in r]
    assert [r.rsplit('"conduit:', 1)[1].rstrip('"') for r in conduit_rules] == [c.name for c in network.conduits]
    assert all(r.count(" accept ") == 1 and "ct state new" in r for r in conduit_rules)
    assert rules[-1] == 'limit rate 10/minute burst 5 packets log prefix "cobot-drop " level info'
    assert ('iifname "eth2" oifname "eth1" ip saddr 10.10.2.10 ip daddr 10.10.1.20 tcp dport 4840 '
            'ct state new counter accept comment "conduit:opcua_sup_to_cell_pc"') in rules
    assert 'udp dport 17910-17929' in text
    assert 'iifname "eth3" oifname "eth1"' not in text  # nothing enterprise → cell


def test_nft_check_mode_accepts_the_ruleset(network, tmp_path):
    path = tmp_path / "cobot_cell.nft"
    path.write_text(render_nftables(network))
    done = subprocess.run(["nft", "-c", "-f", str(path)], capture_output=True, text=True, timeout=20)
    assert done.returncode == 0, done.stderr


def test_ros_env_per_host(network):
    hosts = {h.name: h for _, h in network.hosts()}
    assert render_ros_env(network, hosts["cell_pc"]).splitlines()[1:] == [
        "ROS_DOMAIN_ID=42", "ROS_AUTOMATIC_DISCOVERY_RANGE=SUBNET", "ROS_STATIC_PEERS=10.10.2.10"]
    assert dds_peers(network, hosts["mes_bridge"]) == ("10.10.1.20",)
    assert render_ros_env(network, hosts["arm_controller"]).endswith("ROS_STATIC_PEERS=\n")


def test_cyclonedds_snippet(network):
    cell_pc = next(h for _, h in network.hosts() if h.name == "cell_pc")
    root = etree.fromstring(render_cyclonedds(network, cell_pc).encode())
    ns = {"c": "https://cdds.io/config"}
    assert root.xpath("c:Domain/@id", namespaces=ns) == ["42"]
    assert root.xpath("c:Domain/c:General/c:Interfaces/c:NetworkInterface/@address", namespaces=ns) == ["10.10.1.20"]
    assert root.xpath("c:Domain/c:Discovery/c:Peers/c:Peer/@address", namespaces=ns) == ["10.10.2.10"]
    assert root.xpath("c:Domain/c:Discovery/c:MaxAutoParticipantIndex/text()", namespaces=ns) == ["9"]


def test_render_files_and_table(network):
    files = render_files(network, "all")
    assert list(files) == sorted(files)
    assert "cobot_cell.nft" in files and "env/cell_pc.env" in files and "cyclonedds/mes_bridge.xml" in files
    assert list(render_files(network, "nft")) == ["cobot_cell.nft"]
    with pytest.raises(ValueError, match="format must be one of"):
        render_files(network, "iptables")
    table = render_conduit_table(network)
    assert "| `conduit:dds_cell_to_sup` | cell 10.10.1.20 | supervisory 10.10.2.10 | udp (dds) | 17910-17929 |" in table


def test_cli_render_writes_files(tmp_path, capsys):
    assert main(["network", "render", "--format", "all", "-o", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "cobot_cell.nft").read_text() == render_nftables(
        load_network(REPO / "policies" / "network.yaml"))
    assert main(["network", "render", "--format", "env"]) == 0
    assert "# ==> env/cell_pc.env <==" in capsys.readouterr().out


def test_cli_render_domain_from_policy(tmp_path, capsys):
    text = (REPO / "policies" / "network.yaml").read_text().replace("  domain_ids: [42]", "  participants: 10", 1)
    text = text.replace("  participants: 10               #", "  #", 1)
    path = tmp_path / "network.yaml"
    path.write_text(text)
    assert main(["network", "render", "--network", str(path), "--format", "env"]) == 2
    assert "dds.domain_ids: expected domain ids here or from the workcell policy" in capsys.readouterr().err
    assert main(["network", "render", "--network", str(path), "--policy", str(REPO / "policies" / "workcell.yaml"),
                 "--format", "env"]) == 0
    assert "ROS_DOMAIN_ID=42" in capsys.readouterr().out
