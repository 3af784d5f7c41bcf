"""The keystore: create it from a policy, open it, issue enclaves, list them, start transactions.

A whole new keystore is built in a hidden directory beside its target and switched in at the end
(:func:`init_keystore`); every later change goes through :meth:`Keystore.transaction`
(:mod:`cobot_security.keystore.transaction`).  Time and the passphrase are always passed in.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
from pathlib import Path

from cobot_security import atomic
from cobot_security.errors import InputError, KeystoreError
from cobot_security.keystore import pki, smime
from cobot_security.keystore.audit import AuditEvent, append_audit
from cobot_security.keystore.authority import (
    CaCertificates,
    CaKeys,
    CaPair,
    load_ca_keys,
)
from cobot_security.keystore.crl import CRL_BACKDATE, build_crl
from cobot_security.keystore.enclaves import (
    BACKDATE,
    EnclaveInfo,
    EnclaveMaterial,
    EnclaveProblem,
    issue_material,
    read_enclave_info,
    survey_enclaves,
    write_material,
)
from cobot_security.keystore.files import keystore_owner, read_keystore_file
from cobot_security.keystore.history import DEFAULT_RETENTION
from cobot_security.keystore.integrity import write_integrity_manifest
from cobot_security.keystore.issuing import issue_materials
from cobot_security.keystore.layout import (
    CERT,
    IDENTITY_CA_CERT,
    IDENTITY_CA_KEY,
    KEY,
    PERMISSIONS_CA_CERT,
    PERMISSIONS_CA_KEY,
    SINGLE_CA_CERT,
    SINGLE_CA_KEY,
    KeystoreLayout,
)
from cobot_security.keystore.manifest import Manifest, read_manifest
from cobot_security.keystore.policy_snapshot import RememberedPolicy, remember_policy
from cobot_security.keystore.transaction import (
    ENCLAVE_DIR_MODE,
    NAMESPACE_DIR_MODE,
    KeystoreTransaction,
)
from cobot_security.policy.governance import compile_governance
from cobot_security.policy.model import Enclave, WorkcellPolicy
from cobot_security.tree import remove_tree

IDENTITY_CA_NAME = "cobot_security identity CA"
PERMISSIONS_CA_NAME = "cobot_security permissions CA"
SINGLE_CA_NAME = "cobot_security CA"

_PUBLIC_MODE = 0o644
_KEY_MODE = 0o600


def _backup_name(root: Path, now: _dt.datetime) -> Path:
    stamp = now.astimezone(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    candidate = root.with_name(f"{root.name}.bak-{stamp}")
    counter = 1
    while os.path.lexists(candidate):
        candidate = root.with_name(f"{root.name}.bak-{stamp}-{counter}")
        counter += 1
    return candidate


def _write(path: Path, data: bytes, mode: int) -> None:
    atomic.write_new_file(path, data, mode)  # into the staged tree: made durable once before the swap


def _make_cas(layout: KeystoreLayout, policy: WorkcellPolicy, now: _dt.datetime, passphrase: bytes | None,
              single_ca: bool) -> CaKeys:
    not_before, not_after = now - BACKDATE, now + policy.lifetimes.ca_duration
    if single_ca:
        key = pki.generate_private_key()
        pair = CaPair(pki.make_ca(SINGLE_CA_NAME, key, not_before, not_after), key)
        _write(layout.single_ca_key, pki.private_key_pem(key, passphrase), _KEY_MODE)
        _write(layout.single_ca_cert, pki.certificate_pem(pair.cert), _PUBLIC_MODE)
        for link in (IDENTITY_CA_CERT, PERMISSIONS_CA_CERT):
            os.symlink(SINGLE_CA_CERT, layout.public_dir / link)
        for link in (IDENTITY_CA_KEY, PERMISSIONS_CA_KEY):
            os.symlink(SINGLE_CA_KEY, layout.private_dir / link)
        return CaKeys(pair, pair)
    id_key, perm_key = pki.generate_private_key(), pki.generate_private_key()
    identity = CaPair(pki.make_ca(IDENTITY_CA_NAME, id_key, not_before, not_after), id_key)
    permissions = CaPair(pki.make_ca(PERMISSIONS_CA_NAME, perm_key, not_before, not_after), perm_key)
    _write(layout.identity_ca_key, pki.private_key_pem(id_key, passphrase), _KEY_MODE)
    _write(layout.permissions_ca_key, pki.private_key_pem(perm_key, passphrase), _KEY_MODE)
    _write(layout.identity_ca_cert, pki.certificate_pem(identity.cert), _PUBLIC_MODE)
    _write(layout.permissions_ca_cert, pki.certificate_pem(permissions.cert), _PUBLIC_MODE)
    return CaKeys(identity, permissions)


def _build_keystore(layout: KeystoreLayout, policy: WorkcellPolicy, now: _dt.datetime, passphrase: bytes | None,
                    single_ca: bool, create_enclaves: bool, remembered: RememberedPolicy | None) -> None:
    """Write a complete keystore under ``layout.root`` (an empty staged directory), without fsync."""
    for directory, mode in ((layout.public_dir, NAMESPACE_DIR_MODE), (layout.private_dir, 0o700),
                            (layout.enclaves_dir, NAMESPACE_DIR_MODE), (layout.meta_dir, 0o700)):
        atomic.make_dir(directory, mode)
    _write(layout.lock, b"", 0o600)  # present from the start: locking never adds files
    ca = _make_cas(layout, policy, now, passphrase, single_ca)
    governance = compile_governance(policy)
    _write(layout.governance_xml, governance, _PUBLIC_MODE)
    _write(layout.governance_p7s, smime.sign_smime(governance, ca.permissions.cert, ca.permissions.key), _PUBLIC_MODE)
    # An empty CRL from the start, so that every enclave loads one and a later revocation reaches
    # every participant without re-deploying enclaves.
    _write(layout.crl, build_crl(ca.identity.cert, ca.identity.key, (), now - CRL_BACKDATE,
                                 now + policy.lifetimes.crl_next_update, number=1), _PUBLIC_MODE)
    manifest = Manifest(created=now, policy=policy.name, single_ca=single_ca)
    issued: list[EnclaveMaterial] = []
    materials = issue_materials(policy.enclaves if create_enclaves else (), policy, now, ca)
    with contextlib.closing(materials):
        for material in materials:  # written here while the workers issue the next ones
            directory = layout.enclave_dir(material.path)
            current = layout.enclaves_dir
            for token in material.path[1:].split("/")[:-1]:
                current = current / token
                if not current.is_dir():
                    atomic.make_dir(current, NAMESPACE_DIR_MODE)
            atomic.make_dir(directory, ENCLAVE_DIR_MODE)
            write_material(directory, material, link_crl=True)
            manifest = manifest.with_enclave(material.path, material.record())
            issued.append(material)
    _write(layout.manifest, manifest.to_bytes(), 0o600)
    events = [AuditEvent("init", "/", {"policy": policy.name, "single_ca": str(single_ca).lower(),
                                       "identity_ca_serial": format(ca.identity.cert.serial_number, "x"),
                                       "enclaves": str(len(issued))})]
    events += [AuditEvent("issue", m.path, m.audit_details()) for m in issued]
    append_audit(layout, events, now, durable=False)  # the staged tree is private to this process
    write_integrity_manifest(layout, ca.permissions.cert, ca.permissions.key, now, durable=False)  # last
    if remembered is not None:  # a new CA: sealed anew even when the old keystore's snapshot served it
        remember_policy(layout, remembered, ca.permissions)


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
    remembered: RememberedPolicy | None = None,
) -> Keystore:
    """Create a complete keystore for ``policy`` at ``root`` (CAs, governance, every enclave).

    The keystore is built beside ``root``, made durable with one sync and switched in at the end.
    With ``force`` an existing keystore is kept as ``<root>.bak-<timestamp>``.  CA keys are
    encrypted with ``passphrase``.  ``remembered`` (the policy as the command read it) is left
    as the new keystore's policy snapshot.

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
        raise KeystoreError(root, "a keystore already exists; pass --force to replace it "
                                  f"(the old one would then be kept as {_backup_name(root, now).name})")
    lock = atomic.KeystoreLock(layout.lock, lock_timeout_s) if layout.meta_dir.is_dir() else None
    try:
        root.parent.mkdir(parents=True, exist_ok=True)
        if lock is not None:
            lock.acquire()
        try:
            with atomic.staged_dir(root.parent, root.name, NAMESPACE_DIR_MODE) as staged:
                _build_keystore(KeystoreLayout(staged), policy, now, passphrase, single_ca, create_enclaves,
                                remembered)
                atomic.sync_filesystem(staged)
                old = atomic.swap_into_place(staged, root)
        finally:
            if lock is not None:
                lock.release()
        if old is not None:
            if populated:
                os.rename(old, _backup_name(root, now))
            else:
                remove_tree(old)
    except OSError as exc:
        raise KeystoreError(exc.filename or root, f"cannot create the keystore: {exc.strerror or exc}") from exc
    return Keystore.open(root, passphrase, lock_timeout_s=lock_timeout_s)


class Keystore:
    """An existing keystore: read its CAs and enclaves; change it through :meth:`transaction`."""

    def __init__(self, layout: KeystoreLayout, passphrase: bytes | None, lock_timeout_s: float,
                 remembered: RememberedPolicy | None = None) -> None:
        """Use :meth:`open`; this constructor does not check the disk."""
        self.layout = layout
        self._passphrase = passphrase
        self.lock_timeout_s = lock_timeout_s
        self._remembered = remembered

    @classmethod
    def open(cls, root: Path, passphrase: bytes | None = None, *, lock_timeout_s: float = 30.0,
             remembered: RememberedPolicy | None = None) -> Keystore:
        """Open the keystore at ``root`` after checking its public layout is present and readable.

        Private keys are not read here (a host keystore lacks them); a transaction that needs
        them decrypts them with ``passphrase``.  ``remembered`` (the policy as the command read
        it, :mod:`~cobot_security.keystore.policy_snapshot`) is left as the keystore's policy
        snapshot by each change that commits with the CA keys unlocked.

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
        return cls(layout, passphrase, lock_timeout_s, remembered)

    @classmethod
    def open_host(cls, root: Path, *, lock_timeout_s: float = 30.0) -> Keystore:
        """A host keystore (docs/deployment.md), created as an empty directory when absent.

        Nothing is required inside: ``host request`` and ``host install`` fill it.

        :raises KeystoreError: ``root`` exists and is not a directory, or cannot be created.
        """
        layout = KeystoreLayout(Path(root))
        if os.path.lexists(layout.root) and (layout.root.is_symlink() or not layout.root.is_dir()):
            raise KeystoreError(layout.root, "expected a keystore directory, got another kind of file")
        try:
            layout.root.mkdir(mode=NAMESPACE_DIR_MODE, parents=True, exist_ok=True)
        except OSError as exc:
            raise KeystoreError(exc.filename or layout.root, f"cannot create the keystore: {exc.strerror}") from exc
        return cls(layout, None, lock_timeout_s)

    def transaction(self, now: _dt.datetime, operation: str, *, needs_ca: bool = True,
                    retention: int = DEFAULT_RETENTION, host_keystore: bool = False) -> KeystoreTransaction:
        """The one way to change this keystore (see :mod:`cobot_security.keystore.transaction`)."""
        return KeystoreTransaction(self.layout, now, operation, passphrase=self._passphrase,
                                   lock_timeout_s=self.lock_timeout_s, needs_ca=needs_ca, retention=retention,
                                   host_keystore=host_keystore, remembered=self._remembered)

    def ca_certificates(self) -> CaCertificates:
        """The identity and permissions CA certificates (the same one in single-CA mode).

        :raises KeystoreError: a certificate is missing, refused or not PEM.
        """
        identity, permissions = (pki.load_certificate(read_keystore_file(self.layout, path), path)
                                 for path in (self.layout.identity_ca_cert, self.layout.permissions_ca_cert))
        return CaCertificates(identity, permissions)

    def load_ca_keys(self) -> CaKeys:
        """Both CA pairs, decrypted now (for signing outside a keystore change, e.g. evidence bundles).

        :raises PassphraseError: the keys cannot be decrypted.
        :raises KeystoreError: a key is missing, refused or does not match its certificate.
        """
        return load_ca_keys(self.layout, self._passphrase)

    def create_enclave(self, enclave: Enclave, policy: WorkcellPolicy, now: _dt.datetime, *,
                       force: bool = False) -> EnclaveInfo:
        """Issue ``enclave``: new key, certificate, signed permissions, links; switched in whole.

        :raises InvalidNameError: unsafe enclave path.
        :raises KeystoreError: the enclave exists and ``force`` is false, or the disk refuses.
        :raises PassphraseError: the CA keys cannot be decrypted with the keystore's passphrase.
        :raises LockError: another process holds the keystore lock.
        """
        directory = self.layout.enclave_dir(enclave.path)
        with self.transaction(now, "issue") as tx:
            exists = os.path.lexists(directory / CERT) or os.path.lexists(directory / KEY)
            if exists and not force:
                raise KeystoreError(directory, f"enclave {enclave.path} already exists; pass --force to replace it")
            staged = tx.stage_enclave(enclave.path, archive=False)
            material = issue_material(enclave, policy, now, tx.ca)
            try:
                write_material(staged.directory, material, link_crl=os.path.lexists(tx.layout.crl))
            except OSError as exc:
                raise KeystoreError(exc.filename or directory, f"cannot write enclave {enclave.path}: "
                                                               f"{exc.strerror or exc}") from exc
            staged.record = material.record()
            staged.events.append(AuditEvent("issue", enclave.path,
                                            {**material.audit_details(), **({"replaced": "true"} if exists else {})}))
        return read_enclave_info(self.layout, directory, keystore_owner(self.layout))

    def list_enclaves(self) -> list[EnclaveInfo]:
        """Every readable enclave, sorted by path (see :meth:`enclave_problems` for the others)."""
        return survey_enclaves(self.layout)[0]

    def enclave_problems(self) -> list[EnclaveProblem]:
        """Enclaves whose certificate cannot be read (corrupt, planted link, foreign owner)."""
        return survey_enclaves(self.layout)[1]

    def manifest(self) -> Manifest:
        """Our manifest (an empty one for a keystore made by sros2).

        :raises KeystoreError: it exists but cannot be parsed.
        """
        return read_manifest(self.layout)
