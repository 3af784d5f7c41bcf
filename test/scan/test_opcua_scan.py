"""OPC UA audit against real asyncua servers on 127.0.0.1: one insecure, one hardened."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from opcua_servers import ServerThread, free_port  # noqa: E402

from cobot_security import checks
from cobot_security.cli.main import main
from cobot_security.clock import utc_now
from cobot_security.keystore.layout import KeystoreLayout
from cobot_security.scan.opcua import OpcUaRequirements, scan_opcua
from cobot_security.scan.results import read_scan_results
from cobot_security.status import Level

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(autouse=True)
def _quiet_asyncua() -> None:
    logging.getLogger("asyncua").setLevel(logging.ERROR)


@pytest.fixture(scope="module")
def insecure() -> ServerThread:
    with ServerThread(hardened=False, now=utc_now()) as server:
        yield server


@pytest.fixture(scope="module")
def hardened() -> ServerThread:
    with ServerThread(hardened=True, now=utc_now()) as server:
        yield server


def test_insecure_server_is_flagged(insecure: ServerThread) -> None:
    found = scan_opcua(insecure.url, utc_now(), OpcUaRequirements(), timeout_s=5)

    assert [(f.check, f.subject, f.level) for f in found] == [(checks.OPCUA_ENDPOINTS, insecure.url, Level.ERROR)]
    message = found[0].message
    assert "security policy None" in message
    assert "message security mode None" in message
    assert "anonymous user token allowed" in message
    assert found[0].value("user_token_types") == "Anonymous"


def test_hardened_server_passes_with_evidence(hardened: ServerThread) -> None:
    found = scan_opcua(hardened.url, utc_now(), OpcUaRequirements(), timeout_s=5)

    assert [(f.check, f.level) for f in found] == [(checks.OPCUA_ENDPOINTS, Level.OK)], found
    finding = found[0]
    assert finding.value("security_policies") == "http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256"
    assert finding.value("security_modes") == "SignAndEncrypt"
    assert finding.value("user_token_types") == "UserName"
    assert "RSA 2048 bits" in (finding.value("evidence") or "")


def test_hardened_self_signed_fails_when_a_ca_is_required(hardened: ServerThread) -> None:
    found = scan_opcua(hardened.url, utc_now(), OpcUaRequirements(require_ca=True), timeout_s=5)

    assert found[0].level == Level.ERROR
    assert found[0].message == "server certificate is self-signed but a CA-issued one is required"


def test_cli_stores_results_and_exits_by_level(insecure: ServerThread, hardened: ServerThread, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    keystore = tmp_path / "keystore"
    keystore.mkdir()
    bad = main(["scan", "opcua", insecure.url, "--keystore", str(keystore), "--format", "json"])
    bad_out = json.loads(capsys.readouterr().out)
    good = main(["scan", "opcua", hardened.url, "--keystore", str(keystore)])

    assert (bad, good) == (1, 0)
    assert bad_out[0]["level"] == "ERROR"
    stored = {record.target: record for _, record in read_scan_results(KeystoreLayout(keystore).scans_dir)}
    assert set(stored) == {insecure.url, hardened.url}
    assert [f.level for f in stored[hardened.url].findings] == [Level.OK]


def test_unreachable_server_is_an_error_not_a_hang() -> None:
    url = f"opc.tcp://127.0.0.1:{free_port()}"

    found = scan_opcua(url, utc_now(), OpcUaRequirements(), timeout_s=2)

    assert [(f.subject, f.level) for f in found] == [(url, Level.ERROR)]
