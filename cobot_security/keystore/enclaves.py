"""One enclave's files: issue them (key, certificate, signed grant, layout links) and read them back.

Issuing is split in two so that the expensive part can run anywhere: :func:`issue_material`
is pure computation (a key pair, a certificate, the compiled and signed permissions, all as
bytes), :func:`write_material` puts it into a (staged) directory.  Reading goes through
:mod:`cobot_security.keystore.files`, so a planted link or a stranger's file is reported for
that enclave alone while the others are still listed.
"""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass
from pathlib import Path

from cobot_security import atomic
from cobot_security.clock import iso_utc
from cobot_security.errors import KeystoreError
from cobot_security.keystore import pki, smime
from cobot_security.keystore.authority import CaKeys
from cobot_security.keystore.files import (
    keystore_owner,
    read_keystore_file,
    resolve_keystore_file,
)
from cobot_security.keystore.layout import (
    CERT,
    CRL,
    ENCLAVE_FILES,
    KEY,
    PERMISSIONS_P7S,
    PERMISSIONS_XML,
    KeystoreLayout,
    enclave_crl_target,
    enclave_link_targets,
)
from cobot_security.keystore.manifest import EnclaveRecord, Manifest
from cobot_security.policy.model import Enclave, WorkcellPolicy
from cobot_security.policy.permissions import (
    compile_permissions,
    document_grant_digest,
    grant_digest,
    subject_name,
)
from cobot_security.tree import walk_tree

#: Certificates start this long before ``now`` so that peers with slightly slow clocks accept them.
BACKDATE = _dt.timedelta(hours=1)
_PUBLIC_MODE = 0o644
_KEY_MODE = 0o600


@dataclass(frozen=True)
class EnclaveMaterial:
    """Everything one issued enclave consists of, as bytes (picklable: built in worker processes)."""

    path: str
    key_pem: bytes
    cert_pem: bytes
    permissions_xml: bytes
    permissions_p7s: bytes
    serial: str
    not_after: _dt.datetime
    fingerprint_sha256: str
    grant_sha256: str

    def record(self, key_origin: str = "keystore") -> EnclaveRecord:
        """The manifest entry of this material."""
        return EnclaveRecord(self.serial, self.not_after, self.grant_sha256, key_origin)

    def audit_details(self) -> dict[str, str]:
        """What the audit log says about this issue (never key material)."""
        return {"serial": self.serial, "not_after": iso_utc(self.not_after),
                "fingerprint_sha256": self.fingerprint_sha256}


def issue_material(enclave: Enclave, policy: WorkcellPolicy, now: _dt.datetime, ca: CaKeys,
                   public_key: pki.PublicKey | None = None) -> EnclaveMaterial:
    """A new key pair, a certificate from the identity CA and the permissions signed by the permissions CA.

    With ``public_key`` (from a host's CSR: the key was born on the host) no key is generated and
    ``key_pem`` is empty.

    :raises KeystoreError: the identity CA expires before the certificate could start.
    """
    not_before = now - BACKDATE
    not_after = min(now + policy.lifetimes.enclave_duration, ca.identity.cert.not_valid_after_utc)
    if not_after <= not_before:
        raise KeystoreError(enclave.path, f"enclave {enclave.path}: expected the identity CA to be valid "
                                          f"after {iso_utc(not_before)}, got not_after {iso_utc(not_after)}")
    if public_key is None:
        key = pki.generate_private_key()
        key_pem, subject_key = pki.private_key_pem(key, None), key.public_key()
    else:
        key_pem, subject_key = b"", public_key
    cert = pki.issue_certificate(subject_name(enclave.path), subject_key, ca.identity.cert, ca.identity.key,
                                 not_before, not_after)
    permissions_xml = compile_permissions(policy, enclave, cert.not_valid_before_utc, cert.not_valid_after_utc)
    return EnclaveMaterial(
        path=enclave.path, key_pem=key_pem, cert_pem=pki.certificate_pem(cert),
        permissions_xml=permissions_xml,
        permissions_p7s=smime.sign_smime(permissions_xml, ca.permissions.cert, ca.permissions.key),
        serial=format(cert.serial_number, "x"), not_after=cert.not_valid_after_utc,
        fingerprint_sha256=pki.fingerprint_sha256(cert), grant_sha256=grant_digest(policy, enclave))


def write_layout_links(directory: Path, path: str, link_crl: bool) -> None:
    """The rmw layout's relative links of enclave ``path`` (CA certificates, governance, CRL)."""
    for name, target in enclave_link_targets(path).items():
        os.symlink(target, directory / name)
    if link_crl:
        os.symlink(enclave_crl_target(path), directory / CRL)


def write_material(directory: Path, material: EnclaveMaterial, *, link_crl: bool) -> None:
    """Write ``material`` into the empty staged ``directory`` (at its final depth), without fsync.

    :raises OSError: the disk refuses, or a file is already there (the caller's transaction wraps it).
    """
    atomic.write_new_file(directory / KEY, material.key_pem, _KEY_MODE)
    atomic.write_new_file(directory / CERT, material.cert_pem, _PUBLIC_MODE)
    atomic.write_new_file(directory / PERMISSIONS_XML, material.permissions_xml, _PUBLIC_MODE)
    atomic.write_new_file(directory / PERMISSIONS_P7S, material.permissions_p7s, _PUBLIC_MODE)
    write_layout_links(directory, material.path, link_crl)


@dataclass(frozen=True)
class EnclaveInfo:
    """What the keystore holds for one enclave, read back from its certificate and files."""

    path: str
    directory: Path
    not_before: _dt.datetime
    not_after: _dt.datetime
    serial: str
    subject: str
    fingerprint_sha256: str
    files_ok: bool  #: every file rmw needs is present and none is refused
    missing: tuple[str, ...]
    refused: tuple[str, ...] = ()  #: "key.pem: unexpected symlink ..." (planted links, foreign owners)


@dataclass(frozen=True)
class EnclaveProblem:
    """An enclave directory whose certificate cannot be read (corrupt, planted link, foreign owner)."""

    path: str
    directory: Path
    problem: str


def enclave_path_of(layout: KeystoreLayout, directory: Path) -> str:
    """``enclaves/cell/arm`` → ``/cell/arm``."""
    return "/" + "/".join(directory.relative_to(layout.enclaves_dir).parts)


def read_enclave_info(layout: KeystoreLayout, directory: Path, owner: int) -> EnclaveInfo:
    """Read one enclave back.

    :raises KeystoreError: its certificate is unreadable, refused or not PEM.
    """
    cert_path = directory / CERT
    cert = pki.load_certificate(read_keystore_file(layout, cert_path, owner), cert_path)
    missing, refused = [], []
    for name in ENCLAVE_FILES:
        try:
            resolve_keystore_file(layout, directory / name, owner)
        except FileNotFoundError:
            missing.append(name)
        except KeystoreError as exc:
            refused.append(f"{name}: {exc.problem}")
    return EnclaveInfo(
        path=enclave_path_of(layout, directory), directory=directory, not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc, serial=format(cert.serial_number, "x"),
        subject=cert.subject.rfc4514_string(), fingerprint_sha256=pki.fingerprint_sha256(cert),
        files_ok=not missing and not refused, missing=tuple(missing), refused=tuple(refused))


def enclave_directories(layout: KeystoreLayout) -> list[Path]:
    """Every directory under enclaves/ holding a cert.pem entry, sorted; hidden names and links skipped."""
    found: list[Path] = []
    for current, dirs, files in walk_tree(layout.enclaves_dir):
        here = Path(current)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not (here / d).is_symlink())
        if here != layout.enclaves_dir and (CERT in files or CERT in dirs):
            found.append(here)
    return found


def enclave_dirs_holding(layout: KeystoreLayout, names: frozenset[str] | None = None) -> dict[str, Path]:
    """Enclave path → directory of every directory under enclaves/ holding one of ``names`` (None: any
    non-directory entry), in sorted walk order; hidden names skipped, links never entered."""
    found: dict[str, Path] = {}
    for current, dirs, files in walk_tree(layout.enclaves_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        here = Path(current)
        if here != layout.enclaves_dir and (files if names is None else names.intersection(files)):
            found["/" + "/".join(here.relative_to(layout.enclaves_dir).parts)] = here
    return found


def survey_enclaves(layout: KeystoreLayout) -> tuple[list[EnclaveInfo], list[EnclaveProblem]]:
    """Every enclave, readable ones and problems apart, each sorted by path (one bad one stops nothing)."""
    owner = keystore_owner(layout)
    infos: list[EnclaveInfo] = []
    problems: list[EnclaveProblem] = []
    for directory in enclave_directories(layout):
        try:
            infos.append(read_enclave_info(layout, directory, owner))
        except KeystoreError as exc:
            problems.append(EnclaveProblem(enclave_path_of(layout, directory), directory, exc.problem))
    return sorted(infos, key=lambda i: i.path), sorted(problems, key=lambda p: p.path)


def read_enclave_records(layout: KeystoreLayout, manifest: Manifest) -> dict[str, EnclaveRecord]:
    """Manifest entries for the enclaves whose certificate on disk is not the one the manifest names.

    Used after an interrupted transaction: the disk is the truth, the manifest catches up.
    """
    infos, _problems = survey_enclaves(layout)
    records: dict[str, EnclaveRecord] = {}
    for info in infos:
        known = manifest.enclaves.get(info.path)
        if known is not None and known.serial == info.serial:
            continue
        xml_path = info.directory / PERMISSIONS_XML
        try:
            digest = document_grant_digest(read_keystore_file(layout, xml_path), xml_path)
        except KeystoreError:
            digest = None
        records[info.path] = EnclaveRecord(info.serial, info.not_after, digest,
                                           known.key_origin if known is not None else "keystore")
    return records
