"""The keystore: create it from a policy, open it, issue enclaves and list them.

This composes :mod:`layout` (where), :mod:`pki` (what), :mod:`smime` (signatures) and
:mod:`atomic` (how it reaches the disk).  Whole keystores and whole enclaves are built in a hidden
staged directory beside their target and swapped in at the end, so an interrupted run leaves the
previous state (or nothing), never half of one.  Time and the passphrase are always passed in.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from cobot_security import atomic
from cobot_security.clock import iso_utc
from cobot_security.errors import InputError, KeystoreError
from cobot_security.keystore import pki, smime
from cobot_security.keystore.audit import append_audit
from cobot_security.keystore.integrity import write_integrity_manifest
from cobot_security.keystore.layout import (
    CERT,
    CRL,
    ENCLAVE_FILES,
    IDENTITY_CA_CERT,
    IDENTITY_CA_KEY,
    KEY,
    PERMISSIONS_CA_CERT,
    PERMISSIONS_CA_KEY,
    PERMISSIONS_P7S,
    PERMISSIONS_XML,
    SINGLE_CA_CERT,
    SINGLE_CA_KEY,
    KeystoreLayout,
    enclave_crl_target,
    enclave_link_targets,
)
from cobot_security.keystore.revocation import CRL_BACKDATE, build_crl
from cobot_security.policy.governance import compile_governance
from cobot_security.policy.model import Enclave, WorkcellPolicy
from cobot_security.policy.permissions import compile_permissions, subject_name

#: Certificates start this long before ``now`` so that peers with slightly slow clocks accept them.
BACKDATE = _dt.timedelta(hours=1)
IDENTITY_CA_NAME = "cobot_security identity CA"
PERMISSIONS_CA_NAME = "cobot_security permissions CA"
SINGLE_CA_NAME = "cobot_security CA"
MANIFEST_VERSION = 1

_PUBLIC_MODE = 0o644
_KEY_MODE = 0o600
_DIR_MODE = 0o755


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
    files_ok: bool  #: every file rmw needs is present (symlinks resolving)
    missing: tuple[str, ...]


@dataclass(frozen=True)
class CaCertificates:
    """The identity and permissions CA certificates (the same one in single-CA mode)."""

    identity: x509.Certificate
    permissions: x509.Certificate


@dataclass(frozen=True)
class _CaPair:
    cert: x509.Certificate
    key: pki.PrivateKey


def enclave_policy_digest(enclave: Enclave) -> str:
    """SHA-256 of the policy entry of ``enclave``, ignoring source line numbers (drift detection)."""
    stripped = dataclasses.replace(
        enclave, line=None, nodes=tuple(dataclasses.replace(n, line=None) for n in enclave.nodes)
    )
    return hashlib.sha256(repr(stripped).encode("utf-8")).hexdigest()


def _wrap_os_error(path: Path | str, action: str, exc: OSError) -> KeystoreError:
    return KeystoreError(exc.filename or path, f"cannot {action}: {exc.strerror or exc}")


def _write_public(path: Path, data: bytes) -> None:
    atomic.write_bytes_atomic(path, data, _PUBLIC_MODE)


def _write_key(path: Path, key: pki.PrivateKey, passphrase: bytes | None) -> None:
    atomic.write_bytes_atomic(path, pki.private_key_pem(key, passphrase), _KEY_MODE)


def _write_enclave_files(
    directory: Path,
    enclave: Enclave,
    policy: WorkcellPolicy,
    now: _dt.datetime,
    identity: _CaPair,
    permissions: _CaPair,
    link_crl: bool = False,
) -> x509.Certificate:
    """Write one enclave's files into ``directory`` (already created, at its final depth).

    With ``link_crl`` the enclave also gets ``crl.pem -> ../…/public/crl.pem`` (rmw's optional CRL).
    """
    not_before = now - BACKDATE
    not_after = min(now + policy.lifetimes.enclave_duration, identity.cert.not_valid_after_utc)
    if not_after <= not_before:
        raise KeystoreError(directory, f"enclave {enclave.path}: expected the identity CA to be valid "
                                       f"after {iso_utc(not_before)}, got not_after {iso_utc(not_after)}")
    key = pki.generate_private_key()
    cert = pki.issue_certificate(
        subject_name(enclave.path), key.public_key(), identity.cert, identity.key, not_before, not_after
    )
    permissions_xml = compile_permissions(policy, enclave, cert.not_valid_before_utc, cert.not_valid_after_utc)
    _write_key(directory / KEY, key, None)
    _write_public(directory / CERT, pki.certificate_pem(cert))
    _write_public(directory / PERMISSIONS_XML, permissions_xml)
    _write_public(directory / PERMISSIONS_P7S, smime.sign_smime(permissions_xml, permissions.cert, permissions.key))
    for name, target in enclave_link_targets(enclave.path).items():
        os.symlink(target, directory / name)
    if link_crl:
        os.symlink(enclave_crl_target(enclave.path), directory / CRL)
    return cert


def _make_enclave_parents(layout: KeystoreLayout, path: str) -> Path:
    """Create the missing intermediate directories of enclave ``path``; return its directory."""
    directory = layout.enclave_dir(path)
    current = layout.enclaves_dir
    for token in path[1:].split("/")[:-1]:
        current = current / token
        if not current.is_dir():
            atomic.make_dir(current, _DIR_MODE)
    return directory


def _manifest_entry(enclave: Enclave, cert: x509.Certificate) -> dict[str, str]:
    return {
        "serial": format(cert.serial_number, "x"),
        "not_after": iso_utc(cert.not_valid_after_utc),
        "policy_sha256": enclave_policy_digest(enclave),
    }


def _issue_details(cert: x509.Certificate) -> dict[str, str]:
    return {"serial": format(cert.serial_number, "x"), "not_after": iso_utc(cert.not_valid_after_utc),
            "fingerprint_sha256": pki.fingerprint_sha256(cert)}


def _write_manifest(layout: KeystoreLayout, manifest: dict[str, object]) -> None:
    data = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode("utf-8")
    atomic.write_bytes_atomic(layout.manifest, data, 0o600)


def _backup_name(root: Path, now: _dt.datetime) -> Path:
    stamp = now.astimezone(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    candidate = root.with_name(f"{root.name}.bak-{stamp}")
    counter = 1
    while os.path.lexists(candidate):
        candidate = root.with_name(f"{root.name}.bak-{stamp}-{counter}")
        counter += 1
    return candidate


def _build_keystore(
    layout: KeystoreLayout,
    policy: WorkcellPolicy,
    now: _dt.datetime,
    passphrase: bytes | None,
    single_ca: bool,
    create_enclaves: bool,
) -> None:
    """Write a complete keystore under ``layout.root`` (an empty staged directory)."""
    for directory, mode in (
        (layout.public_dir, _DIR_MODE),
        (layout.private_dir, 0o700),
        (layout.enclaves_dir, _DIR_MODE),
        (layout.meta_dir, 0o700),
    ):
        atomic.make_dir(directory, mode)
    atomic.write_bytes_atomic(layout.lock, b"", 0o600)  # present from the start: locking never adds files
    ca_not_before, ca_not_after = now - BACKDATE, now + policy.lifetimes.ca_duration
    if single_ca:
        key = pki.generate_private_key()
        ca = _CaPair(pki.make_ca(SINGLE_CA_NAME, key, ca_not_before, ca_not_after), key)
        identity = permissions = ca
        _write_key(layout.single_ca_key, key, passphrase)
        _write_public(layout.single_ca_cert, pki.certificate_pem(ca.cert))
        for link in (IDENTITY_CA_CERT, PERMISSIONS_CA_CERT):
            os.symlink(SINGLE_CA_CERT, layout.public_dir / link)
        for link in (IDENTITY_CA_KEY, PERMISSIONS_CA_KEY):
            os.symlink(SINGLE_CA_KEY, layout.private_dir / link)
    else:
        id_key, perm_key = pki.generate_private_key(), pki.generate_private_key()
        identity = _CaPair(pki.make_ca(IDENTITY_CA_NAME, id_key, ca_not_before, ca_not_after), id_key)
        permissions = _CaPair(pki.make_ca(PERMISSIONS_CA_NAME, perm_key, ca_not_before, ca_not_after), perm_key)
        _write_key(layout.identity_ca_key, id_key, passphrase)
        _write_key(layout.permissions_ca_key, perm_key, passphrase)
        _write_public(layout.identity_ca_cert, pki.certificate_pem(identity.cert))
        _write_public(layout.permissions_ca_cert, pki.certificate_pem(permissions.cert))
    governance = compile_governance(policy)
    _write_public(layout.governance_xml, governance)
    _write_public(layout.governance_p7s, smime.sign_smime(governance, permissions.cert, permissions.key))
    # An empty CRL from the start, so that every enclave loads one and a later revocation reaches
    # every participant without re-deploying enclaves.
    _write_public(layout.crl, build_crl(identity.cert, identity.key, (), now - CRL_BACKDATE,
                                        now + policy.lifetimes.crl_next_update, number=1))
    entries: dict[str, dict[str, str]] = {}
    issued: list[tuple[str, x509.Certificate]] = []
    if create_enclaves:
        for enclave in policy.enclaves:
            directory = _make_enclave_parents(layout, enclave.path)
            atomic.make_dir(directory, _DIR_MODE)
            cert = _write_enclave_files(directory, enclave, policy, now, identity, permissions, True)
            entries[enclave.path] = _manifest_entry(enclave, cert)
            issued.append((enclave.path, cert))
    _write_manifest(layout, {
        "version": MANIFEST_VERSION,
        "created": iso_utc(now),
        "policy": policy.name,
        "single_ca": single_ca,
        "enclaves": entries,
    })
    # The staged tree is private to this process, so the audit log needs no lock here.
    append_audit(layout, "init", "/", {"policy": policy.name, "single_ca": str(single_ca).lower(),
                                       "identity_ca_serial": format(identity.cert.serial_number, "x"),
                                       "enclaves": str(len(issued))}, now)
    for path, cert in issued:
        append_audit(layout, "issue", path, _issue_details(cert), now)
    write_integrity_manifest(layout, permissions.cert, permissions.key, now)  # last: covers everything


def init_keystore(
    root: Path,
    policy: WorkcellPolicy,
    now: _dt.datetime,
    *,
    passphrase: bytes | None = None,
    single_ca: bool = False,
    force: bool = False,
    create_enclaves: bool = True,
    lock_timeout_s: float = 30.0,
) -> Keystore:
    """Create a complete keystore for ``policy`` at ``root`` (CAs, governance, every enclave).

    The keystore is built beside ``root`` and swapped in at the end.  With ``force`` an existing
    keystore is kept as ``<root>.bak-<timestamp>``.  CA keys are encrypted with ``passphrase``.

    :raises KeystoreError: ``root`` holds something and ``force`` is false, or the disk refuses.
    :raises InputError: an empty passphrase.
    :raises InvalidNameError: an enclave path of the policy is unsafe.
    :raises LockError: another process holds the existing keystore's lock.
    """
    root = Path(root)
    layout = KeystoreLayout(root)
    for enclave in policy.enclaves:
        layout.enclave_dir(enclave.path)  # reject unsafe names before anything is written
    if passphrase is not None and not passphrase:
        raise InputError(None, "passphrase", "a non-empty passphrase or none at all", "an empty one")
    existing = os.path.lexists(root)
    if existing and (root.is_symlink() or not root.is_dir()):
        raise KeystoreError(root, "expected a keystore directory, got another kind of file")
    populated = existing and any(root.iterdir())
    if populated and not force:
        raise KeystoreError(
            root,
            "a keystore already exists; pass --force to replace it "
            f"(the old one would then be kept as {_backup_name(root, now).name})",
        )
    lock = atomic.KeystoreLock(layout.lock, lock_timeout_s) if layout.meta_dir.is_dir() else None
    try:
        root.parent.mkdir(parents=True, exist_ok=True)
        if lock is not None:
            lock.acquire()
        try:
            with atomic.staged_dir(root.parent, root.name, _DIR_MODE) as staged:
                _build_keystore(KeystoreLayout(staged), policy, now, passphrase, single_ca, create_enclaves)
                old = atomic.swap_into_place(staged, root)
        finally:
            if lock is not None:
                lock.release()
        if old is not None:
            if populated:
                os.rename(old, _backup_name(root, now))
            else:
                shutil.rmtree(old)
    except OSError as exc:
        raise _wrap_os_error(root, "create the keystore", exc) from exc
    return Keystore.open(root, passphrase, lock_timeout_s=lock_timeout_s)


class Keystore:
    """An existing keystore: read its CAs and enclaves, issue new enclaves under its lock."""

    def __init__(self, layout: KeystoreLayout, passphrase: bytes | None, lock_timeout_s: float) -> None:
        """Use :meth:`open`; this constructor does not check the disk."""
        self.layout = layout
        self._passphrase = passphrase
        self._lock_timeout_s = lock_timeout_s
        self._identity: _CaPair | None = None
        self._permissions: _CaPair | None = None
        self._batch_depth = 0
        self._batch_now: _dt.datetime | None = None  #: set when a batched change is pending

    @classmethod
    def open(cls, root: Path, passphrase: bytes | None = None, *, lock_timeout_s: float = 30.0) -> Keystore:
        """Open the keystore at ``root`` after checking its public layout is present and readable.

        Private keys are not read here (a deployed keystore may lack them); they are loaded, with
        ``passphrase``, the first time an enclave is issued.

        :raises KeystoreError: ``root`` is missing, unreadable or not a keystore (names what is missing).
        """
        layout = KeystoreLayout(Path(root))
        if not layout.root.is_dir():
            raise KeystoreError(layout.root, "expected a keystore directory, found none "
                                             "(create one with cobot-security init)")
        required = (layout.identity_ca_cert, layout.permissions_ca_cert, layout.enclaves_dir, layout.governance_p7s)
        missing = [str(p.relative_to(layout.root)) for p in required if not p.exists()]
        if missing:
            raise KeystoreError(layout.root, "not a keystore: missing " + ", ".join(missing))
        unreadable = [str(p.relative_to(layout.root)) for p in required if not os.access(p, os.R_OK)]
        if unreadable:
            raise KeystoreError(layout.root, "keystore not readable by this user: " + ", ".join(unreadable))
        return cls(layout, passphrase, lock_timeout_s)

    def _read(self, path: Path) -> bytes:
        try:
            return path.read_bytes()
        except OSError as exc:
            raise _wrap_os_error(path, "read", exc) from None

    def ca_certificates(self) -> CaCertificates:
        """The identity and permissions CA certificates.

        :raises KeystoreError: a certificate is missing or not PEM.
        """
        return CaCertificates(
            identity=pki.load_certificate(self._read(self.layout.identity_ca_cert), self.layout.identity_ca_cert),
            permissions=pki.load_certificate(
                self._read(self.layout.permissions_ca_cert), self.layout.permissions_ca_cert
            ),
        )

    def _load_ca(self, cert_path: Path, key_path: Path) -> _CaPair:
        cert = pki.load_certificate(self._read(cert_path), cert_path)
        if not key_path.exists():
            raise KeystoreError(key_path, "expected the CA private key here to issue enclaves, found none")
        key = pki.load_private_key(self._read(key_path), self._passphrase, key_path)
        if not pki.key_matches_certificate(key, cert):
            raise KeystoreError(key_path, f"expected the private key of {cert_path.name}, got another key")
        return _CaPair(cert, key)

    @property
    def lock_timeout_s(self) -> float:
        """How long keystore changes wait for another process's lock before failing."""
        return self._lock_timeout_s

    def ca_pairs(self, reload: bool = False) -> tuple[_CaPair, _CaPair]:
        """The (identity, permissions) CA certificate and key pairs, decrypted once.

        ``reload`` re-reads them from disk (after a CA renewal).

        :raises PassphraseError: the keys cannot be decrypted.
        :raises KeystoreError: a key is missing or does not match its certificate.
        """
        if reload:
            self._identity = self._permissions = None
        return self._ca_pairs()

    def _ca_pairs(self) -> tuple[_CaPair, _CaPair]:
        """Load (once) the CA certificates and keys; wrong passphrase fails here, before writes."""
        if self._identity is None or self._permissions is None:
            self._identity = self._load_ca(self.layout.identity_ca_cert, self.layout.identity_ca_key)
            self._permissions = self._load_ca(self.layout.permissions_ca_cert, self.layout.permissions_ca_key)
        return self._identity, self._permissions

    def create_enclave(
        self, enclave: Enclave, policy: WorkcellPolicy, now: _dt.datetime, *, force: bool = False
    ) -> EnclaveInfo:
        """Issue ``enclave``: new key, certificate, signed permissions, symlinks; swapped in whole.

        :raises InvalidNameError: unsafe enclave path.
        :raises KeystoreError: the enclave exists and ``force`` is false, or the disk refuses.
        :raises PassphraseError: the CA keys cannot be decrypted with the keystore's passphrase.
        :raises LockError: another process holds the keystore lock.
        """
        directory = self.layout.enclave_dir(enclave.path)
        identity, permissions = self._ca_pairs()  # a wrong passphrase fails before anything is written
        with atomic.KeystoreLock(self.layout.lock, self._lock_timeout_s):
            exists = (directory / CERT).exists() or (directory / KEY).exists()
            if exists and not force:
                raise KeystoreError(directory, f"enclave {enclave.path} already exists; "
                                               "pass --force to replace it")
            if self._batch_depth:
                self._batch_now = now  # batch() re-hashes and signs once at its end, whatever happens here
            try:
                _make_enclave_parents(self.layout, enclave.path)
                link_crl = self.layout.crl.exists()
                with atomic.staged_dir(directory.parent, directory.name, _DIR_MODE) as staged:
                    cert = _write_enclave_files(staged, enclave, policy, now, identity, permissions, link_crl)
                    old = atomic.swap_into_place(staged, directory)
                if old is not None:
                    self._adopt_nested_enclaves(old, directory)
                    shutil.rmtree(old)
                self._update_manifest(enclave, cert)
                details = _issue_details(cert)
                if exists:
                    details["replaced"] = "true"
                append_audit(self.layout, "issue", enclave.path, details, now)
                if not self._batch_depth:
                    write_integrity_manifest(self.layout, permissions.cert, permissions.key, now)
            except OSError as exc:
                raise _wrap_os_error(directory, f"write enclave {enclave.path}", exc) from exc
        return self._enclave_info(directory)

    @contextlib.contextmanager
    def batch(self) -> Iterator[Keystore]:
        """Defer the signed integrity manifest while many enclaves are issued; sign it once at the end.

        Re-hashing and re-signing every public file per enclave made rotating N enclaves O(N²).
        Inside the block :meth:`create_enclave` skips the manifest; leaving the block (also by an
        exception, in ``finally``) re-hashes the disk under the keystore lock and signs it once,
        with the ``now`` of the last issue, so it matches whatever was swapped in.  Nested blocks
        sign at the outermost end.  Until then :func:`check_integrity` run by another process
        reports the changed enclaves as modified; a process killed inside the block leaves the
        manifest stale until the next keystore change.

        :raises KeystoreError: the manifest cannot be written (replaces an exception of the block).
        :raises LockError: another process holds the keystore lock past the timeout.
        """
        self._batch_depth += 1
        try:
            yield self
        finally:
            self._batch_depth -= 1
            if not self._batch_depth and self._batch_now is not None:
                now, self._batch_now = self._batch_now, None
                _identity, permissions = self._ca_pairs()
                with atomic.KeystoreLock(self.layout.lock, self._lock_timeout_s):
                    write_integrity_manifest(self.layout, permissions.cert, permissions.key, now)

    @staticmethod
    def _adopt_nested_enclaves(old: Path, new: Path) -> None:
        # Enclaves may nest (/cell and /cell/arm): move the old directory's sub-enclaves into the
        # new one.  Between the swap and this rename a nested enclave is briefly absent.
        for child in sorted(old.iterdir()):
            if child.is_dir() and not child.is_symlink() and not child.name.startswith("."):
                os.rename(child, new / child.name)

    def _update_manifest(self, enclave: Enclave, cert: x509.Certificate) -> None:
        atomic.make_private_dir(self.layout.meta_dir)
        manifest: dict[str, object] = {"version": MANIFEST_VERSION, "enclaves": {}}
        if self.layout.manifest.exists():
            try:
                manifest = json.loads(self._read(self.layout.manifest))
            except ValueError:
                raise KeystoreError(self.layout.manifest, "expected JSON (our manifest)") from None
        entries = manifest.setdefault("enclaves", {})
        if not isinstance(entries, dict):
            raise KeystoreError(self.layout.manifest, "enclaves: expected a JSON object")
        entries[enclave.path] = _manifest_entry(enclave, cert)
        _write_manifest(self.layout, manifest)

    def manifest(self) -> dict[str, object]:
        """Our manifest (``{}`` for a keystore made by sros2, which has none).

        :raises KeystoreError: it exists but is not JSON.
        """
        if not self.layout.manifest.exists():
            return {}
        try:
            data = json.loads(self._read(self.layout.manifest))
        except ValueError:
            raise KeystoreError(self.layout.manifest, "expected JSON (our manifest)") from None
        return data if isinstance(data, dict) else {}

    def _enclave_info(self, directory: Path) -> EnclaveInfo:
        cert_path = directory / CERT
        cert = pki.load_certificate(self._read(cert_path), cert_path)
        relative = directory.relative_to(self.layout.enclaves_dir)
        missing = tuple(name for name in ENCLAVE_FILES if not (directory / name).exists())
        return EnclaveInfo(
            path="/" + "/".join(relative.parts),
            directory=directory,
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
            serial=format(cert.serial_number, "x"),
            subject=cert.subject.rfc4514_string(),
            fingerprint_sha256=pki.fingerprint_sha256(cert),
            files_ok=not missing,
            missing=missing,
        )

    def list_enclaves(self) -> list[EnclaveInfo]:
        """Every enclave directory (one holding cert.pem), sorted by path; hidden names skipped.

        :raises KeystoreError: a cert.pem cannot be read or parsed.
        """
        found: list[EnclaveInfo] = []
        for current, dirs, files in os.walk(self.layout.enclaves_dir, followlinks=False):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            here = Path(current)
            if here != self.layout.enclaves_dir and CERT in files:
                found.append(self._enclave_info(here))
        return sorted(found, key=lambda info: info.path)
