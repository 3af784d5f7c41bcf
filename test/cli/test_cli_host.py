"""``cobot-security host bundle|request|sign|install`` on the example cell: exit codes, one-line errors,
nothing installed on a refusal, ``--json`` for fleet tools."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cobot_security.cli.main import main

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def machines(cli, example_keystore: Path, tmp_path: Path) -> dict[str, Path]:
    """The CA machine's keystore, an empty directory per host, and the pinned permissions CA."""
    pinned = tmp_path / "pinned_ca.pem"
    pinned.write_bytes((example_keystore / "public" / "permissions_ca.cert.pem").read_bytes())
    return {"ca": example_keystore, "cell_pc": tmp_path / "cell_pc", "vision_pc": tmp_path / "vision_pc",
            "pinned": pinned, "files": tmp_path}


def _enroll(cli, m: dict[str, Path]) -> Path:
    request, answer = m["files"] / "cell_pc.request", m["files"] / "cell_pc.answer"
    assert cli("host", "request", "cell_pc", "--keystore", m["cell_pc"], "-o", request).code == 0
    assert cli("host", "sign", request, "--keystore", m["ca"], "-o", answer).code == 0
    return answer


def test_enrollment_and_bundle_from_the_readme(cli, machines: dict[str, Path], tree_digest) -> None:
    m = machines
    request = m["files"] / "cell_pc.request"
    asked = cli("host", "request", "cell_pc", "--keystore", m["cell_pc"], "-o", request, "--json")
    signed = cli("host", "sign", request, "--keystore", m["ca"], "-o", m["files"] / "cell_pc.answer")
    installed = cli("host", "install", m["files"] / "cell_pc.answer", "--keystore", m["cell_pc"],
                    "--ca-cert", m["pinned"], "--json")
    bundled = cli("host", "bundle", "vision_pc", "--keystore", m["ca"], "-o", m["files"] / "vision_pc.bundle")
    first = cli("host", "install", m["files"] / "vision_pc.bundle", "--keystore", m["vision_pc"],
                "--ca-cert", m["pinned"], "--host", "vision_pc")
    before = tree_digest(m["vision_pc"] / "enclaves")
    again = cli("host", "install", m["files"] / "vision_pc.bundle", "--keystore", m["vision_pc"],
                "--ca-cert", m["pinned"], "--json")

    assert [r.code for r in (asked, signed, installed, bundled, first, again)] == [0] * 6
    fingerprint = json.loads(asked.out)["fingerprint"]
    assert f"request fingerprint {fingerprint}" in signed.out  # the operator compares both machines' lines
    assert json.loads(installed.out)["changed"] == [
        "/cell/arm_driver", "/cell/cell_controller", "/cell/gripper", "/cell/safety_monitor",
        "/cobot_security/health_reporter", "/cobot_security/keystore_manager", "/cobot_security/launch_listener",
        "/cobot_security/supervisor"]
    assert "keys of 4 enclave(s) inside (mode 0600)" in bundled.out
    assert (m["files"] / "vision_pc.bundle").stat().st_mode & 0o777 == 0o600
    assert json.loads(again.out) == {"changed": [], "files_written": 0, "host": "vision_pc", "kind": "bundle",
                                     "refused": {}, "removed": []}  # idempotent: Ansible's "changed: false"
    assert tree_digest(m["vision_pc"] / "enclaves") == before
    assert sorted(p.name for p in (m["vision_pc"] / "enclaves" / "cell").iterdir()) == ["vision"]
    assert not (m["cell_pc"] / "private" / "identity_ca.key.pem").exists()
    posture = cli("posture", "--keystore", m["cell_pc"], "--format", "json")
    findings = json.loads(posture.out)
    assert "host_assignment" in json.dumps(findings)


def test_refusals_are_one_line_exit_2_and_install_nothing(cli, machines: dict[str, Path], tree_digest,
                                                          tmp_path: Path) -> None:
    m = machines
    answer = _enroll(cli, m)
    assert cli("host", "install", answer, "--keystore", m["cell_pc"], "--ca-cert", m["pinned"]).code == 0
    cli("host", "bundle", "vision_pc", "--keystore", m["ca"], "-o", m["files"] / "vision_pc.bundle")
    assert cli("init", "--keystore", tmp_path / "other_ca").code == 0
    other_pin = tmp_path / "other_ca" / "public" / "permissions_ca.cert.pem"
    request = json.loads((m["files"] / "cell_pc.request").read_text())
    request["items"][0]["enclave"] = "/cell/vision"
    request["nonce"] = "f" * 32
    foreign = m["files"] / "foreign.request"
    foreign.write_text(json.dumps(request))
    garbage = m["files"] / "garbage"
    garbage.write_bytes(b"\x00" * 100)
    before = tree_digest(m["cell_pc"])

    cases = {
        "replayed request": ("host", "sign", m["files"] / "cell_pc.request", "--keystore", m["ca"],
                             "-o", tmp_path / "x"),
        "enclave of another host": ("host", "sign", foreign, "--keystore", m["ca"], "-o", tmp_path / "x"),
        "bundle for another host": ("host", "install", m["files"] / "vision_pc.bundle", "--keystore", m["cell_pc"],
                                    "--ca-cert", m["pinned"]),
        "pinned to another CA": ("host", "install", answer, "--keystore", m["cell_pc"], "--ca-cert", other_pin),
        "not a package": ("host", "install", garbage, "--keystore", m["cell_pc"], "--ca-cert", m["pinned"]),
        "unknown host": ("host", "bundle", "office_pc", "--keystore", m["ca"], "-o", tmp_path / "x"),
        "bad host name": ("host", "request", "../etc", "--keystore", m["cell_pc"], "-o", tmp_path / "x"),
    }
    results = {name: cli(*argv) for name, argv in cases.items()}

    for name, result in results.items():
        assert result.code == 2, (name, result)
        assert len(result.err_lines) == 1, (name, result.err)
        assert result.err.startswith("cobot-security host: error: "), (name, result.err)
    assert "replay" in results["replayed request"].err
    assert "enclave /cell/vision is not assigned to host cell_pc" in results["enclave of another host"].err
    assert "got one for host vision_pc" in results["bundle for another host"].err
    assert "signed by another CA" in results["pinned to another CA"].err
    assert tree_digest(m["cell_pc"]) == before
    assert not (tmp_path / "x").exists()


def test_install_needs_a_pinned_ca(cli, machines: dict[str, Path], capsys) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["host", "install", "f", "--keystore", str(machines["cell_pc"])])
    assert caught.value.code == 2 and "--ca-cert" in capsys.readouterr().err


def test_console_script_host_request(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    result = subprocess.run([sys.executable, "-m", "cobot_security.cli.main", "host", "request", "edge_pc",
                             "--keystore", str(tmp_path / "edge"), "-o", str(tmp_path / "edge.request")],
                            capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "edge.request").read_text())["host"] == "edge_pc"
    pending = tmp_path / "edge" / ".cobot_security" / "pending"
    assert sorted(p.name for p in pending.iterdir()) == ["~cell~mes_bridge.key.pem",
                                                         "~cobot_security~health_reporter.key.pem",
                                                         "~cobot_security~keystore_manager.key.pem",
                                                         "~cobot_security~launch_listener.key.pem"]
    assert {p.stat().st_mode & 0o777 for p in pending.iterdir()} == {0o600} and pending.stat().st_mode & 0o777 == 0o700
