"""Evidence bundles: a fresh bundle verifies; a changed, added or removed member is named."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from cobot_security.errors import KeystoreError
from cobot_security.incident.bundle import export_bundle, verify_bundle
from cobot_security.incident.engine import IncidentEngine
from cobot_security.incident.incidents import IncidentStore
from cobot_security.keystore.layout import KeystoreLayout
from cobot_security.keystore.store import init_keystore
from cobot_security.policy.load import load_policy
from cobot_security.resources import shipped_file
from cobot_security.status import Finding, Level

ROGUE = Finding("graph_conformance", "/cell/rogue", Level.ERROR, "node /cell/rogue is not in the policy")


@pytest.fixture(scope="module")
def keystores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import datetime as dt

    now = dt.datetime(2026, 11, 29, 11, 0, tzinfo=dt.timezone.utc)
    policy = load_policy(shipped_file("policies/workcell.yaml"))
    base = tmp_path_factory.mktemp("bundle")
    plain = init_keystore(base / "plain", policy, now).layout.root
    locked = init_keystore(base / "locked", policy, now, passphrase=b"correct horse").layout.root
    return {"plain": plain, "locked": locked}


def _incident(plan, directory: Path, now) -> tuple[IncidentStore, str]:
    store = IncidentStore(directory)
    engine = IncidentEngine(plan, store)
    incident = engine.evaluate([], [ROGUE], now).opened[0]
    store.write_evidence(incident.id, "posture_before.json", {"score": 50})
    store.write_evidence(incident.id, "health.json", {"involved": [ROGUE.name]})
    return store, incident.id


def _rewrite(bundle: Path, out: Path, change) -> None:
    with tarfile.open(bundle, "r:gz") as tar:
        members = {i.name: tar.extractfile(i).read() for i in tar}
    change(members)
    with tarfile.open(out, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_bundle_signed_by_the_permissions_ca_verifies(plan, keystores, tmp_path: Path, now) -> None:
    root = keystores["plain"]
    store, incident_id = _incident(plan, tmp_path / "incidents", now)
    result = export_bundle(store, incident_id, KeystoreLayout(root), tmp_path / "b.tar.gz", now)
    assert result.signature == "smime"
    assert {"incident.json", "posture_before.json", "health.json", "audit/audit.log", "audit/excerpt.json",
            "keystore/manifest.json", "MANIFEST.json", "MANIFEST.json.p7s"} <= set(result.members)
    assert "posture_after.json" in result.missing
    verification = verify_bundle(result.path, KeystoreLayout(root))
    assert verification.ok, verification
    assert verification.signature == "smime"
    with tarfile.open(result.path, "r:gz") as tar:
        excerpt = json.loads(tar.extractfile("audit/excerpt.json").read())
    assert [r["event"] for r in excerpt["records"]][:1] == ["init"]  # the keystore was created 1 h before


def test_without_the_ca_key_the_bundle_is_hmac_signed(plan, keystores, tmp_path: Path, now) -> None:
    root = keystores["locked"]  # CA keys encrypted, no passphrase given
    store, incident_id = _incident(plan, tmp_path / "incidents", now)
    result = export_bundle(store, incident_id, KeystoreLayout(root), tmp_path / "b.tar.gz", now)
    assert result.signature == "hmac-sha256"
    assert verify_bundle(result.path, KeystoreLayout(root)).ok
    # another keystore's audit key does not verify it
    other = verify_bundle(result.path, KeystoreLayout(keystores["plain"]))
    assert not other.ok and other.first_bad == "MANIFEST.json"


@pytest.mark.parametrize("change,bad", [
    (lambda m: m.__setitem__("health.json", m["health.json"].replace(b"rogue", b"roguX")), "health.json"),
    (lambda m: m.__setitem__("extra.txt", b"planted"), "extra.txt"),
    (lambda m: m.pop("posture_before.json"), "posture_before.json"),
    (lambda m: m.__setitem__("MANIFEST.json", m["MANIFEST.json"].replace(b'"version": 1', b'"version": 2')),
     "MANIFEST.json"),
    (lambda m: m.__setitem__("audit/audit.log", b"\n".join(m["audit/audit.log"].splitlines()[1:]) + b"\n"),
     "audit/audit.log"),
    # JSON nested deeper than Python's decoder recurses is a bad member, not a RecursionError.
    (lambda m: m.__setitem__("MANIFEST.json", b"[" * 100_000 + b"]" * 100_000), "MANIFEST.json"),
])
def test_tampered_bundle_names_the_first_bad_member(plan, keystores, tmp_path: Path, now, change, bad) -> None:
    root = keystores["plain"]
    store, incident_id = _incident(plan, tmp_path / "incidents", now)
    bundle = export_bundle(store, incident_id, KeystoreLayout(root), tmp_path / "b.tar.gz", now).path
    tampered = tmp_path / "t.tar.gz"
    _rewrite(bundle, tampered, change)
    result = verify_bundle(tampered, KeystoreLayout(root))
    assert not result.ok
    assert result.first_bad == bad, result


@pytest.mark.parametrize("field,value", [("closed_at", "garbage"), ("closed_at", ["2026"]),
                                         ("opened_at", "2026-12-01T10:00:00"), ("opened_at", 7)])
def test_an_incident_record_with_a_bad_time_is_an_error_naming_it(plan, keystores, tmp_path: Path, now,
                                                                  field: str, value: object) -> None:
    store, incident_id = _incident(plan, tmp_path / "incidents", now)
    record = store.incident_dir(incident_id) / "incident.json"
    document = json.loads(record.read_bytes())
    document[field] = value
    record.write_text(json.dumps(document))
    # Export did date arithmetic on it: a ValueError traceback ("Invalid isoformat string").
    with pytest.raises(KeystoreError, match=r"incident\.json: expected an incident record: .*UTC offset"):
        export_bundle(store, incident_id, KeystoreLayout(keystores["plain"]), tmp_path / "b.tar.gz", now)
