"""zenoh_render: router and session configurations written from the policy and a real keystore."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import stat
from pathlib import Path

import pytest
from cryptography import x509

from cobot_security.dds.verify import self_test_policy
from cobot_security.errors import KeystoreError
from cobot_security.keystore.audit import verify_audit_log
from cobot_security.keystore.layout import KeystoreLayout
from cobot_security.keystore.revocation import revoke_enclave
from cobot_security.keystore.store import Keystore, init_keystore
from cobot_security.middleware.zenoh_render import ZenohLayout, render_zenoh
from cobot_security.policy.model import Enclave, NodeGrants

LISTENER = "/selftest/listener"


@pytest.fixture
def keystore(tmp_path: Path, fixed_now: dt.datetime) -> Keystore:
    """A self-test keystore (talker, listener, bystander) on domain 5."""
    init_keystore(tmp_path / "ks", self_test_policy(5), fixed_now)
    return Keystore.open(tmp_path / "ks")


def _json(path: Path) -> dict[str, object]:
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def test_router_and_sessions_use_the_keystore_identity(keystore: Keystore, tmp_path: Path,
                                                       fixed_now: dt.datetime) -> None:
    out = render_zenoh(keystore, self_test_policy(5), tmp_path / "zenoh", fixed_now)
    router = _json(out.router_config)
    tls = router["transport"]["link"]["tls"]  # type: ignore[index]
    assert router["mode"] == "router" and router["transport"]["link"]["protocols"] == ["tls"]  # type: ignore[index]
    assert tls["enable_mtls"] is True and tls["verify_name_on_connect"] is False
    assert tls["root_ca_certificate"] == str(keystore.layout.identity_ca_cert.absolute())
    assert router["access_control"]["default_permission"] == "deny"  # type: ignore[index]
    assert stat.S_IMODE(out.router_key.stat().st_mode) == 0o600
    cert = x509.load_pem_x509_certificate(out.router_cert.read_bytes())
    ca = x509.load_pem_x509_certificate(keystore.layout.identity_ca_cert.read_bytes())
    cert.verify_directly_issued_by(ca)
    session = _json(out.session_config(LISTENER))
    enclave = keystore.layout.enclave_dir(LISTENER).absolute()
    assert session["mode"] == "client" and session["listen"] == {"endpoints": []}
    assert session["transport"]["link"]["tls"]["connect_certificate"] == str(enclave / "cert.pem")  # type: ignore[index]
    assert session["scouting"]["multicast"]["enabled"] is False  # type: ignore[index]
    assert verify_audit_log(keystore.layout).ok


def test_render_replaces_the_directory_whole(keystore: Keystore, tmp_path: Path, fixed_now: dt.datetime) -> None:
    target = tmp_path / "zenoh"
    render_zenoh(keystore, self_test_policy(5), target, fixed_now)
    (target / "stray.json5").write_text("{}")
    first_key = ZenohLayout(target).router_key.read_bytes()
    render_zenoh(keystore, self_test_policy(5), target, fixed_now)
    assert not (target / "stray.json5").exists()
    assert ZenohLayout(target).router_key.read_bytes() != first_key
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_revoked_enclave_gets_no_rules(keystore: Keystore, tmp_path: Path, fixed_now: dt.datetime) -> None:
    policy = self_test_policy(5)
    revoke_enclave(keystore, LISTENER, "key_compromise", fixed_now, policy)
    out = render_zenoh(keystore, policy, tmp_path / "zenoh", fixed_now)
    acl = _json(out.router_config)["access_control"]
    assert LISTENER not in [s["id"] for s in acl["subjects"]]  # type: ignore[index]
    assert "/selftest/talker" in [s["id"] for s in acl["subjects"]]  # type: ignore[index]


def test_an_enclave_missing_from_the_keystore_is_named(keystore: Keystore, tmp_path: Path,
                                                       fixed_now: dt.datetime) -> None:
    policy = self_test_policy(5)
    extra = Enclave("/selftest/new", (NodeGrants("new", "/selftest"),))
    with pytest.raises(KeystoreError, match=r"enclaves/selftest/new: enclave missing from the keystore"):
        render_zenoh(keystore, dataclasses.replace(policy, enclaves=policy.enclaves + (extra,)),
                     tmp_path / "zenoh", fixed_now)
    assert not (tmp_path / "zenoh").exists()
    assert KeystoreLayout(keystore.layout.root).enclave_dir("/selftest/talker").is_dir()
