"""``cobot-security incident``: list/show/close, export + verify-bundle, drill; exit codes 0/1/2."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from cobot_security.clock import utc_now
from cobot_security.incident.engine import IncidentEngine
from cobot_security.incident.incidents import IncidentStore
from cobot_security.incident.plan import load_plan
from cobot_security.keystore.layout import KeystoreLayout
from cobot_security.posture.attestations import load_attestations
from cobot_security.resources import shipped_file
from cobot_security.status import Finding, Level

ROGUE = Finding("graph_conformance", "/cell/rogue", Level.ERROR, "node /cell/rogue is not in the policy")


def _open_incident(keystore: Path) -> str:
    store = IncidentStore(KeystoreLayout(keystore).incidents_dir)
    engine = IncidentEngine(load_plan(shipped_file("policies/incident_response.yaml")), store)
    incident = engine.evaluate([], [ROGUE], utc_now()).opened[0]
    store.write_evidence(incident.id, "posture_before.json", {"score": 0})
    store.write_evidence(incident.id, "health.json", {"involved": [ROGUE.name]})
    return incident.id


def test_list_show_close(cli, example_keystore: Path) -> None:
    incident_id = _open_incident(example_keystore)
    listed = cli("incident", "list", "--keystore", example_keystore, "--json")
    assert listed.code == 0
    [record] = json.loads(listed.out)
    assert record["id"] == incident_id and record["status"] == "open" and record["trigger"] == "unknown_node"
    table = cli("incident", "list", "--keystore", example_keystore)
    assert incident_id in table.out and "critical" in table.out
    shown = cli("incident", "show", incident_id, "--keystore", example_keystore)
    assert json.loads(shown.out)["subjects"] == ["/cell/rogue"]

    closed = cli("incident", "close", incident_id, "--note", "laptop removed", "--keystore", example_keystore)
    assert closed.code == 0, closed.err
    again = cli("incident", "close", incident_id, "--note", "x", "--keystore", example_keystore)
    assert again.code == 2 and "expected an open incident" in again.err
    missing = cli("incident", "show", "inc-20260101T000000Z-00000000", "--keystore", example_keystore)
    assert missing.code == 2 and len(missing.err_lines) == 1


def test_export_and_verify_bundle(cli, example_keystore: Path, tmp_path: Path) -> None:
    incident_id = _open_incident(example_keystore)
    bundle = tmp_path / "evidence.tar.gz"
    exported = cli("incident", "export", incident_id, "-o", bundle, "--keystore", example_keystore)
    assert exported.code == 0, exported.err
    assert "signed with S/MIME by the permissions CA" in exported.out
    ok = cli("incident", "verify-bundle", bundle, "--keystore", example_keystore)
    assert ok.code == 0 and "bundle intact" in ok.out

    data = bytearray(bundle.read_bytes())
    data[len(data) // 2] ^= 0xFF  # corrupt the gzip stream: unreadable is bad input
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(bytes(data))
    result = cli("incident", "verify-bundle", broken, "--keystore", example_keystore)
    assert result.code in (1, 2) and result.err_lines


def test_verify_bundle_exit_1_names_the_member(cli, example_keystore: Path, tmp_path: Path) -> None:
    import io
    import tarfile

    incident_id = _open_incident(example_keystore)
    bundle = tmp_path / "evidence.tar.gz"
    assert cli("incident", "export", incident_id, "-o", bundle, "--keystore", example_keystore).code == 0
    with tarfile.open(bundle, "r:gz") as tar:
        members = {i.name: tar.extractfile(i).read() for i in tar}
    members["incident.json"] = members["incident.json"].replace(b"critical", b"low")
    tampered = tmp_path / "tampered.tar.gz"
    with tarfile.open(tampered, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    result = cli("incident", "verify-bundle", tampered, "--keystore", example_keystore)
    assert result.code == 1
    assert "incident.json: SHA-256 does not match" in result.err


def test_drill_writes_the_attestation(cli, example_keystore: Path, tmp_path: Path, tree_digest) -> None:
    attestations = tmp_path / "attestations.yaml"
    shutil.copy(shipped_file("policies/attestations.yaml"), attestations)
    before = tree_digest(example_keystore)
    result = cli("incident", "drill", "rogue_node", "--keystore", example_keystore, "--incident-dir",
                 tmp_path / "incidents", "--attestations", attestations, "--attested-by", "Tester")
    assert result.code == 0, result.err
    assert "dry_run" in result.out and "would publish" in result.out
    assert tree_digest(example_keystore) == before
    ids = [a.id for a in load_attestations(attestations)]
    assert "incident_response_drill" in ids and "usb_ports_locked" in ids
    bad = cli("incident", "drill", "nope", "--incident-dir", tmp_path / "incidents", "--attestations", attestations)
    assert bad.code == 2 and "playbook" in bad.err


def test_console_script_help() -> None:
    script = Path(sys.executable).parent / "cobot-security"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "cobot_security.cli.main"]
    result = subprocess.run(cmd + ["incident", "--help"], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0 and "verify-bundle" in result.stdout


def test_every_corruption_of_a_bundle_is_refused_without_a_traceback(cli, example_keystore: Path,
                                                                      tmp_path: Path) -> None:
    """A flipped byte anywhere in the gzip stream is refused (exit 1 or 2, one line), never a crash.

    The only flips that may pass leave the evidence byte-identical: the gzip trailer after the tar
    end marker (tarfile never reads it), or an unsigned part of the S/MIME container such as the
    embedded certificate (verification uses the CA given, not the embedded copy).
    """
    incident_id = _open_incident(example_keystore)
    bundle = tmp_path / "evidence.tar.gz"
    assert cli("incident", "export", incident_id, "-o", bundle, "--keystore", example_keystore).code == 0
    original = bundle.read_bytes()
    broken = tmp_path / "broken.tar.gz"
    for offset in range(0, len(original), max(1, len(original) // 40)):
        data = bytearray(original)
        data[offset] ^= 0xFF
        broken.write_bytes(bytes(data))
        result = cli("incident", "verify-bundle", broken, "--keystore", example_keystore)
        if result.code == 0:
            signature = "MANIFEST.json.p7s"
            accepted, exported = _members(broken), _members(bundle)
            assert {k: v for k, v in accepted.items() if k != signature} == \
                {k: v for k, v in exported.items() if k != signature}, offset
            continue
        assert result.code in (1, 2), (offset, result.err)
        assert len(result.err_lines) == 1, offset


def _members(path: Path) -> dict[str, bytes]:
    import tarfile

    with tarfile.open(path, "r:gz") as tar:
        return {info.name: tar.extractfile(info).read() for info in tar if info.isfile()}
