"""A cell of three machines in network namespaces: keys born on their host, renewal through the CA's
machine over the ROS graph, DDS Security between two hosts with only their own host keystores.

``ca``, ``cell_pc`` and ``vision_pc`` each have their own directory tree and namespace, joined by
veth links to a forwarding gateway namespace (the package's CellNamespaces). The cell was set up 70
days ago: ``cell_pc`` enrolled (keys made on ``cell_pc``, a request file carried to ``ca``, the
answer carried back), ``vision_pc`` installed a bundle. Now the certificates are inside their renew
window and the CRL is past its next update: real ``keystore_manager`` processes (authority in
``ca``, members in the hosts; rclpy over the veth links) renew every enclave with new keys born on
its host and distribute a fresh CRL. Then real Cyclone DDS Security participants in ``cell_pc`` and
``vision_pc`` exchange a granted flow using only their host keystores, and a ``cell_pc`` enclave
cannot be used in ``vision_pc``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from cobot_security.clock import utc_now
from cobot_security.dds.runner import AgentResult
from cobot_security.health.host_probes import probe_host_assignment
from cobot_security.keystore.host_authority import answer_request, bundle_host
from cobot_security.keystore.host_documents import parse_request
from cobot_security.keystore.host_install import install_package
from cobot_security.keystore.host_member import make_enrollment_request
from cobot_security.keystore.integrity import check_integrity
from cobot_security.keystore.layout import KeystoreLayout
from cobot_security.keystore.manifest import read_manifest
from cobot_security.keystore.revocation import crl_status
from cobot_security.keystore.store import Keystore, init_keystore
from cobot_security.network.namespaces import CellNamespaces
from cobot_security.policy.load import load_policy
from cobot_security.status import Level

pytestmark = pytest.mark.dds

REPO = Path(__file__).resolve().parents[2]
MEMBERS = ("cell_pc", "vision_pc")
RENEWAL_BOUND_S = 60.0
DDS_BOUND_S = 25.0


def _serials(layout: KeystoreLayout) -> dict[str, str]:
    return {path: record.serial for path, record in read_manifest(layout).enclaves.items()}


def _carry(source: Path, tree: Path) -> Path:
    """Move a file from one machine's tree to another's (what an operator's USB stick does)."""
    target = tree / "inbox" / source.name
    target.parent.mkdir(exist_ok=True)
    shutil.copyfile(source, target)
    return target


def _set_up_cell(trees: dict[str, Path], policy_file: Path, then: dt.datetime) -> None:
    """What the operator did 70 days ago: CA keystore, enrollment of cell_pc, bundle for vision_pc."""
    policy = load_policy(policy_file)
    ca = init_keystore(trees["ca"] / "keystore", policy, then)
    pinned = trees["ca"] / "keystore" / "public" / "permissions_ca.cert.pem"
    pinned_cert = x509.load_pem_x509_certificate(pinned.read_bytes())
    for host in MEMBERS:  # the pinned certificate reaches each host out of band
        shutil.copyfile(pinned, trees[host] / "pinned_ca.pem")
    cell = Keystore.open_host(trees["cell_pc"] / "keystore")
    request = make_enrollment_request(cell, policy, "cell_pc", then)
    (trees["cell_pc"] / "cell_pc.request").write_bytes(request.to_bytes())
    carried = _carry(trees["cell_pc"] / "cell_pc.request", trees["ca"])
    answer = answer_request(ca, policy, parse_request(carried.read_bytes(), str(carried)), then,
                            source=str(carried), by_hand=True)
    (trees["ca"] / "cell_pc.answer").write_bytes(answer.document)
    carried = _carry(trees["ca"] / "cell_pc.answer", trees["cell_pc"])
    install_package(cell, carried.read_bytes(), pinned_cert, trees["cell_pc"] / "pinned_ca.pem", then,
                    source=str(carried))
    (trees["ca"] / "vision_pc.bundle").write_bytes(bundle_host(ca, policy, "vision_pc", then).document)
    carried = _carry(trees["ca"] / "vision_pc.bundle", trees["vision_pc"])
    install_package(Keystore.open_host(trees["vision_pc"] / "keystore"), carried.read_bytes(), pinned_cert,
                    trees["vision_pc"] / "pinned_ca.pem", then, source=str(carried), host="vision_pc")


def _ros_env(host_net, host: str, domain_id: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROS_SECURITY") and k != "ROS_LOCALHOST_ONLY"}
    peers = ";".join(str(host_net.address_of(h)) for h in host_net.zones if h != host)
    env.update(ROS_DOMAIN_ID=str(domain_id), RMW_IMPLEMENTATION="rmw_fastrtps_cpp",
               ROS_AUTOMATIC_DISCOVERY_RANGE="SUBNET", ROS_STATIC_PEERS=peers,
               FASTDDS_BUILTIN_TRANSPORTS="UDPv4",  # over the veth links, never shared memory
               PYTHONUNBUFFERED="1", PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    return env


def _start_manager(host_net, machine: str, role: str, host: str, tree: Path, policy_file: Path,
                   domain_id: int) -> subprocess.Popen:
    params = {"keystore": tree / "keystore", "policy": policy_file, "role": role, "host": host,
              "check_period_s": 1.0, "period_s": 0.5, "request_timeout_s": 5.0}
    args = [sys.executable, "-m", "cobot_security.nodes.keystore_manager", "--ros-args"]
    for key, value in params.items():
        args += ["-p", f"{key}:={value}"]
    log = open(tree / f"keystore_manager_{role}.log", "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(host_net.exec_prefix(machine) + args, env=_ros_env(host_net, machine, domain_id),
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def _renewed(trees: dict[str, Path], before: dict[str, dict[str, str]], now: dt.datetime) -> bool:
    for host in MEMBERS:
        layout = KeystoreLayout(trees[host] / "keystore")
        serials = _serials(layout)
        if not serials or any(serials[p] == before[host][p] for p in before[host]):
            return False
        if crl_status(layout, now).expired:
            return False
        # Settled: the change that switched the new keystore in has also removed the old one (kept
        # at a staging name with its journal until then); stopping the managers earlier interrupts it.
        if layout.journal.exists() or any(p.name.startswith(".keystore.staging") for p in trees[host].iterdir()):
            return False
    return True


def _cyclone_config(address: str, peers: list[str]) -> str:
    peer_xml = "".join(f'<Peer address="{p}"/>' for p in peers)
    return (f'<CycloneDDS><Domain id="any"><General><Interfaces><NetworkInterface address="{address}"/>'
            "</Interfaces><AllowMulticast>false</AllowMulticast></General><Discovery>"
            "<ParticipantIndex>auto</ParticipantIndex><MaxAutoParticipantIndex>9</MaxAutoParticipantIndex>"
            f"<Peers>{peer_xml}</Peers></Discovery></Domain></CycloneDDS>")


def _run_agents(host_net, tmp_path: Path, domain_id: int, specs: dict[str, tuple[str, dict]]) -> dict[str, AgentResult]:
    """Real Cyclone DDS participants, each in its machine's namespace, until the granted flow arrives."""
    results = {name: AgentResult(name) for name in specs}
    procs: dict[str, subprocess.Popen] = {}
    try:
        for name, (machine, spec) in specs.items():
            config = tmp_path / f"cyclone_{machine}.xml"
            config.write_text(_cyclone_config(str(host_net.address_of(machine)),
                                              [str(host_net.address_of(h)) for h in MEMBERS if h != machine]))
            env = dict(os.environ, CYCLONEDDS_URI=config.as_uri(),
                       PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
            payload = {"name": name, "domain_id": domain_id, "period_s": 0.2, "deadline_s": DDS_BOUND_S + 10, **spec}
            procs[name] = subprocess.Popen(
                host_net.exec_prefix(machine) + [sys.executable, "-m", "cobot_security.dds.agent", json.dumps(payload)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        deadline = time.monotonic() + DDS_BOUND_S
        while time.monotonic() < deadline and not results["cell_controller"].received:
            streams = {p.stdout: n for n, p in procs.items() if p.poll() is None}
            ready, _, _ = select.select(list(streams), [], [], 0.5)
            for stream in ready:
                line = stream.readline()
                if line.strip().startswith("{"):
                    results[streams[stream]].apply(json.loads(line))
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
    return results


def _private_keys(tree: Path) -> list[tuple[Path, object]]:
    """Every PEM private key anywhere under ``tree`` (keystore, pending keys, history, inbox...)."""
    found = []
    for current, _dirs, files in os.walk(tree, followlinks=False):
        for name in files:
            path = Path(current) / name
            if path.is_symlink() or not path.is_file():
                continue
            data = path.read_bytes()
            if b"PRIVATE KEY-----" in data:
                found.append((path, serialization.load_pem_private_key(data, None).public_key()))
    return found


def _public_keys_of_certificates(keystore: Path) -> dict[str, object]:
    """Enclave path → public key of every enclave certificate of a keystore."""
    keys = {}
    for cert_path in (keystore / "enclaves").rglob("cert.pem"):
        enclave = "/" + "/".join(cert_path.parent.relative_to(keystore / "enclaves").parts)
        keys[enclave] = x509.load_pem_x509_certificate(cert_path.read_bytes()).public_key()
    return keys


def _public_numbers(key: object) -> object:
    return key.public_numbers()  # type: ignore[attr-defined]


def test_cell_of_three_hosts(host_net, tmp_path: Path, domain_id: int) -> None:
    trees = {name: tmp_path / name for name in ("ca", *MEMBERS)}
    for tree in trees.values():
        tree.mkdir()
    policy_file = tmp_path / "workcell.yaml"
    policy_file.write_text((REPO / "policies" / "workcell.yaml").read_text().replace(
        "domain_ids: [42]", f"domain_ids: [{domain_id}]"))
    policy = load_policy(policy_file)
    then = utc_now() - dt.timedelta(days=70)
    _set_up_cell(trees, policy_file, then)
    before = {host: _serials(KeystoreLayout(trees[host] / "keystore")) for host in MEMBERS}
    origins = {host: {r.key_origin for r in read_manifest(KeystoreLayout(trees[host] / "keystore")).enclaves.values()}
               for host in MEMBERS}
    assert origins == {"cell_pc": {"host"}, "vision_pc": {"keystore"}}  # enrolled vs bundled, told apart

    procs = [_start_manager(host_net, "ca", "authority", "ca_pc", trees["ca"], policy_file, domain_id)]
    procs += [_start_manager(host_net, host, "member", host, trees[host], policy_file, domain_id) for host in MEMBERS]
    try:
        deadline = time.monotonic() + RENEWAL_BOUND_S
        while time.monotonic() < deadline and not _renewed(trees, before, utc_now()):
            assert all(p.poll() is None for p in procs), "a keystore_manager exited"
            time.sleep(0.5)
    finally:
        _stop(procs)
    logs = {f"{tree.name}/{p.name}": p.read_text(errors="replace")[-3000:] for tree in trees.values()
            for p in tree.glob("*.log")}
    now = utc_now()
    if not _renewed(trees, before, now):
        pytest.fail("not renewed in time:\n" + "\n".join(f"--- {name}\n{text}" for name, text in logs.items()))

    for host in MEMBERS:
        layout = KeystoreLayout(trees[host] / "keystore")
        integrity = check_integrity(layout, at=now)  # verifies with the public certificates only
        assert integrity.ok and integrity.host == host, integrity
        assert {r.key_origin for r in read_manifest(layout).enclaves.values()} == {"host"}  # born here now
        assert set(_serials(layout)) == {e.path for e in policy.enclaves_on(host)}
        assert [f.level for f in probe_host_assignment(layout, policy, host)] == [Level.OK]
        assert not (layout.private_dir / "identity_ca.key.pem").exists()

    ca_keystore = trees["ca"] / "keystore"
    ca_keys = [x509.load_pem_x509_certificate((ca_keystore / "public" / name).read_bytes()).public_key()
               for name in ("identity_ca.cert.pem", "permissions_ca.cert.pem")]
    for host in MEMBERS:
        other = next(h for h in MEMBERS if h != host)
        foreign = _public_keys_of_certificates(trees[other] / "keystore")
        own = policy.enclaves_on(host)
        for path, public in _private_keys(trees[host]):
            assert all(_public_numbers(public) != _public_numbers(k) for k in ca_keys), f"CA private key at {path}"
            assert all(_public_numbers(public) != _public_numbers(k) for k in foreign.values()), \
                f"{other}'s enclave key at {path}"
            if path.name == "key.pem":
                enclave = "/" + "/".join(path.parent.relative_to(trees[host] / "keystore" / "enclaves").parts)
                assert enclave in {e.path for e in own}, f"key of {enclave} on {host}"

    cell_ks, vision_ks = trees["cell_pc"] / "keystore", trees["vision_pc"] / "keystore"
    assert not (vision_ks / "enclaves" / "cell" / "cell_controller").exists()
    results = _run_agents(host_net, tmp_path, domain_id, {
        "cell_controller": ("cell_pc", {"enclave_dir": str(cell_ks / "enclaves/cell/cell_controller"),
                                        "readers": ["rt/cell/detections"]}),
        "vision": ("vision_pc", {"enclave_dir": str(vision_ks / "enclaves/cell/vision"),
                                 "writers": ["rt/cell/detections"]}),
        "stolen_identity": ("vision_pc", {"enclave_dir": str(vision_ks / "enclaves/cell/cell_controller"),
                                          "readers": ["rt/cell/detections"]}),
    })
    assert results["vision"].participant_created and results["vision"].writers == {"rt/cell/detections": None}
    assert ("rt/cell/detections", "vision") in results["cell_controller"].received, results
    assert not results["stolen_identity"].participant_created  # cell_pc's key is not on vision_pc


def test_links_are_running_as_soon_as_the_namespaces_exist(hosts_network) -> None:
    """A program started right away sees its link settled: up, no address still tentative.

    An address turning final while Fast DDS starts left it announcing loopback locators only.
    """
    with CellNamespaces(hosts_network, f"cbr{os.getpid() % 100000}") as namespaces:
        for zone in namespaces.zones:
            shown = subprocess.run(namespaces.exec_prefix(zone) + ["ip", "-j", "addr", "show", "dev", "eth0"],
                                   check=True, capture_output=True, text=True, timeout=10).stdout
            link = json.loads(shown)[0]
            assert link["operstate"] == "UP" and "LOWER_UP" in link["flags"], (zone, link)
            assert not any(a.get("tentative") for a in link["addr_info"]), (zone, link["addr_info"])
