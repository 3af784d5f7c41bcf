"""What the DDS Security plugins accept as identity trust, measured with real Cyclone participants.

The CA rollover design (docs/rotation.md, "What the DDS Security plugins accept (measured)") rests
on these facts; if a Cyclone DDS version changes them, these tests fail and the design must be
revisited.  The third fact (a CA renewed with the same key and subject interoperates both ways
with the old one) is pinned by test_rotation_dds.py::
test_old_ca_and_renewed_identity_ca_participants_talk_both_ways.

Enclave directories are built in ``tmp_path`` from real files (no symlinks), then loaded exactly
as rmw_cyclonedds_cpp loads an enclave (cobot_security.dds.properties).
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Mapping
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from cobot_security.dds.runner import AgentResult, AgentSpec, run_agents
from cobot_security.dds.verify import self_test_policy
from cobot_security.keystore import pki
from cobot_security.keystore.store import Keystore, init_keystore

pytestmark = pytest.mark.dds

CHATTER = "rt/selftest/chatter"
TALKER, LISTENER = "/selftest/talker", "/selftest/listener"
IDENTITY_CA, CERT, KEY, CRL = "identity_ca.cert.pem", "cert.pem", "key.pem", "crl.pem"


def _now() -> dt.datetime:
    # The DDS plugins judge validity by the real clock.
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def _heard(results: Mapping[str, AgentResult], reader: str, sender: str) -> bool:
    return (CHATTER, sender) in results[reader].received


def _enclave_copy(keystore: Keystore, path: str, dest: Path) -> Path:
    """The keystore's enclave ``path`` as a stand-alone directory of real files (links resolved)."""
    shutil.copytree(keystore.layout.enclave_dir(path), dest, symlinks=False)
    assert not any(p.is_symlink() for p in dest.iterdir())
    return dest


def _pem(keystore: Keystore) -> bytes:
    return keystore.layout.identity_ca_cert.read_bytes()


def test_identity_ca_bundle_only_first_certificate_is_a_trust_anchor(tmp_path: Path, dds_domain: int) -> None:
    """Only the FIRST certificate of identity_ca.cert.pem is used; the rest of a bundle is ignored.

    Observed with Cyclone DDS 0.10 (Debian libddsc) and its builtin plugins:

    * bundle NEW+OLD with an OLD-CA identity: the participant is not even created (its own
      certificate must chain to the first certificate; DDS_RETCODE_ERROR at creation);
    * bundle OLD+NEW with the same OLD-CA identity: created, and an OLD-CA listener hears it;
    * a NEW-CA identity with bundle NEW+OLD (created: its own chain needs the first) and an
      OLD-CA identity with bundle OLD+NEW: each would accept the other if bundles were honoured,
      but neither hears the other; each still talks to a peer of its first CA (controls).

    So old and new CA keys cannot overlap through a bundle: a rollover is cell-wide.
    """
    policy = self_test_policy(dds_domain)
    old = init_keystore(tmp_path / "old", policy, _now())
    new = init_keystore(tmp_path / "new", policy, _now())
    old_ca, new_ca = _pem(old), _pem(new)
    assert old_ca != new_ca

    def mixed(name: str, path: str, identity_from: Keystore, bundle: bytes) -> Path:
        """OLD permissions, governance and permissions CA; identity (cert, key) from ``identity_from``.

        crl.pem is that of the keystore whose CA comes first in ``bundle`` (the CA the plugin uses).
        """
        directory = _enclave_copy(old, path, tmp_path / name)
        source = identity_from.layout.enclave_dir(path)
        for filename in (CERT, KEY):
            shutil.copyfile(source / filename, directory / filename)
        (directory / IDENTITY_CA).write_bytes(bundle)
        first = old if bundle.startswith(old_ca) else new
        shutil.copyfile(first.layout.crl, directory / CRL)
        return directory

    specs = [
        # Controls: plain OLD-CA talker and listener.
        AgentSpec("old_talker", dds_domain, _enclave_copy(old, TALKER, tmp_path / "old_talker"), writers=(CHATTER,)),
        AgentSpec("old_listener", dds_domain, _enclave_copy(old, LISTENER, tmp_path / "old_listener"),
                  readers=(CHATTER,)),
        # OLD identity, bundle with the NEW CA first / with the OLD CA first.
        AgentSpec("new_first", dds_domain, mixed("new_first", TALKER, old, new_ca + old_ca), writers=(CHATTER,)),
        AgentSpec("old_first", dds_domain, mixed("old_first", TALKER, old, old_ca + new_ca), writers=(CHATTER,)),
        # Cross-CA pair, each holding the other's CA second in its bundle.
        AgentSpec("new_talker_bundled", dds_domain, mixed("new_talker_bundled", TALKER, new, new_ca + old_ca),
                  writers=(CHATTER,)),
        AgentSpec("old_listener_bundled", dds_domain,
                  mixed("old_listener_bundled", LISTENER, old, old_ca + new_ca), readers=(CHATTER,)),
        # Control for the NEW-CA talker built this way: a listener trusting only the NEW CA.
        AgentSpec("new_listener", dds_domain, mixed("new_listener", LISTENER, new, new_ca), readers=(CHATTER,)),
    ]

    def settled(r: Mapping[str, AgentResult]) -> bool:
        return (_heard(r, "old_listener", "old_talker") and _heard(r, "old_listener", "old_first")
                and _heard(r, "old_listener_bundled", "old_talker") and _heard(r, "new_listener", "new_talker_bundled"))

    results = run_agents(specs, settled, timeout_s=30, grace_s=3)

    # Positive controls: every participant whose chain ends at its first CA works.
    assert _heard(results, "old_listener", "old_talker")
    assert _heard(results, "old_listener_bundled", "old_talker")
    assert _heard(results, "new_listener", "new_talker_bundled")
    # Order matters: OLD+NEW accepts the OLD identity, NEW+OLD does not even create the participant.
    assert results["old_first"].participant_created and results["old_first"].writers == {CHATTER: None}
    assert _heard(results, "old_listener", "old_first")
    assert not results["new_first"].participant_created
    assert results["new_first"].participant_error is not None
    # The second certificate of a bundle is no trust anchor, in either direction.
    assert results["new_talker_bundled"].participant_created
    assert not _heard(results, "old_listener_bundled", "new_talker_bundled")
    assert not _heard(results, "old_listener", "new_talker_bundled")
    assert not _heard(results, "new_listener", "old_talker")
    assert not _heard(results, "new_listener", "old_first")


def _intermediate_ca(root_cert: x509.Certificate, root_key: pki.PrivateKey, now: dt.datetime
                     ) -> tuple[x509.Certificate, pki.PrivateKey]:
    key = pki.generate_private_key()
    root_ski = root_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "cobot intermediate identity CA")]))
        .issuer_name(root_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(root_ski), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    return cert, key


def _reissue(directory: Path, path: str, ca_cert: x509.Certificate, ca_key: pki.PrivateKey,
             now: dt.datetime, chain: bytes = b"") -> x509.Certificate:
    """New key and certificate ``CN=<path>`` from ``ca_cert`` in ``directory``; ``chain`` follows the leaf."""
    key = pki.generate_private_key()
    cert = pki.issue_certificate(f"CN={path}", key.public_key(), ca_cert, ca_key,
                                 now - dt.timedelta(minutes=5), now + dt.timedelta(days=30))
    (directory / CERT).write_bytes(pki.certificate_pem(cert) + chain)
    (directory / KEY).write_bytes(pki.private_key_pem(key, None))
    return cert


@pytest.mark.parametrize("root", ["keystore_identity_ca", "root_without_pathlen"])
def test_intermediate_ca_chained_in_cert_pem_is_refused(tmp_path: Path, dds_domain: int, root: str) -> None:
    """A talker certificate issued by an intermediate CA, with leaf+intermediate in cert.pem, is refused.

    Observed with Cyclone DDS 0.10: the participant is not created (DDS_RETCODE_ERROR), with the
    intermediate signed by the keystore's identity CA (pathlen 0) and equally under a root CA
    without a path length limit, so the refusal is not just the keystore CA's pathlen: the plugin
    verifies the identity against identity_ca.cert.pem alone and ignores the rest of cert.pem.
    Permissions are untouched (the subject stays CN=/selftest/talker).  crl.pem is left out of
    every enclave of this run (rmw loads it only when present): with CRL checking on, a leaf of
    an intermediate without its own CRL would be refused for that reason alone.  Controls: a
    talker issued directly by the same root, and the listener, exchange data in the same run.
    """
    now = _now()
    policy = self_test_policy(dds_domain)
    keystore = init_keystore(tmp_path / "ks", policy, now)
    identity = keystore.load_ca_keys().identity
    root_cert, root_key = identity.cert, identity.key
    if root == "root_without_pathlen":
        root_key = pki.generate_private_key()
        name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "cobot test root identity CA")])
        root_cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(root_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=60))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
            .sign(root_key, hashes.SHA256())
        )
    inter_cert, inter_key = _intermediate_ca(root_cert, root_key, now)

    dirs = {name: _enclave_copy(keystore, path, tmp_path / name)
            for name, path in (("listener", LISTENER), ("talker", TALKER), ("chained", TALKER))}
    for directory in dirs.values():
        (directory / CRL).unlink()
        (directory / IDENTITY_CA).write_bytes(pki.certificate_pem(root_cert))
    if root == "root_without_pathlen":
        _reissue(dirs["listener"], LISTENER, root_cert, root_key, now)
        _reissue(dirs["talker"], TALKER, root_cert, root_key, now)
    leaf = _reissue(dirs["chained"], TALKER, inter_cert, inter_key, now, chain=pki.certificate_pem(inter_cert))
    # The chain itself is sound: each link is signed by the next (a refusal is about the chain's shape).
    leaf.verify_directly_issued_by(inter_cert)
    inter_cert.verify_directly_issued_by(root_cert)

    specs = [
        AgentSpec("listener", dds_domain, dirs["listener"], readers=(CHATTER,)),
        AgentSpec("talker", dds_domain, dirs["talker"], writers=(CHATTER,)),
        AgentSpec("chained", dds_domain, dirs["chained"], writers=(CHATTER,)),
    ]
    results = run_agents(specs, lambda r: _heard(r, "listener", "talker"), timeout_s=30, grace_s=3)
    assert _heard(results, "listener", "talker"), "control pair did not exchange data"
    assert not results["chained"].participant_created
    assert results["chained"].participant_error is not None
    assert not _heard(results, "listener", "chained")
