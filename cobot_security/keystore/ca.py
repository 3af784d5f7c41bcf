"""CA lifecycle: renewal with the same key (zero downtime) and rollover to a new key (compromise).

Renewal re-issues a CA certificate with the SAME key and subject and a new validity, as one
keystore transaction that stages the whole keystore: the new certificate and every re-signed
document are written into the staged copy and switched in with one ``renameat2``, so a crash at
any point leaves the old keystore or the new one, each verifying.  Cyclone DDS
Security accepts an enclave certificate signed by the old CA certificate when it trusts the
renewed one and vice versa (checked on this machine), so nodes keep talking while they restart
one by one.  The permissions CA is different: a participant accepts a permissions or governance
document only when the certificate embedded as its signer is exactly the permissions CA
certificate it trusts (observed here, whatever the serial), so nodes holding the old and the
renewed permissions CA refuse each other's permissions.  Renewing it therefore re-signs governance
and every permissions document in the same transaction and needs a cell-wide restart
(docs/rotation.md); renew it together with the identity CA, well before expiry.

Rollover (new key) cannot be rolling: the plugins honour one CA certificate only (a bundle of two
is not honoured, a chained intermediate is refused).  It is a planned cell-wide switch: build a
complete new keystore beside the old one, stop the nodes, exchange the two directories in one
``renameat2`` call, start the nodes, verify.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from cobot_security import atomic
from cobot_security.clock import iso_utc
from cobot_security.errors import InputError, KeystoreError
from cobot_security.keystore import pki, smime
from cobot_security.keystore.authority import CaPair
from cobot_security.keystore.enclaves import BACKDATE, enclave_directories
from cobot_security.keystore.files import read_keystore_file
from cobot_security.keystore.layout import (
    PERMISSIONS_P7S,
    PERMISSIONS_XML,
    KeystoreLayout,
)
from cobot_security.keystore.store import Keystore, init_keystore
from cobot_security.keystore.transaction import KeystoreTransaction
from cobot_security.policy.model import WorkcellPolicy

CA_KINDS: tuple[str, ...] = ("identity", "permissions")


@dataclass(frozen=True)
class CaRenewal:
    """One renewed CA certificate: same key and subject, new serial and validity."""

    which: str
    old_serial: str
    new_serial: str
    not_after: _dt.datetime
    resigned: int  #: .p7s documents signed again (permissions CA only)


def _cert_file(path: Path) -> Path:
    """Where a CA certificate really lives (single-CA keystores link both names to ca.cert.pem)."""
    return path.parent / os.readlink(path) if path.is_symlink() else path


def _renewed(pair: CaPair, now: _dt.datetime, duration: _dt.timedelta) -> x509.Certificate:
    """The CA certificate again: same key, subject and extensions, new validity and serial."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(pair.cert.subject)
        .issuer_name(pair.cert.subject)
        .public_key(pair.key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + duration)
    )
    for extension in pair.cert.extensions:
        builder = builder.add_extension(extension.value, extension.critical)
    return builder.sign(pair.key, hashes.SHA256())


def _resign_documents(tx: KeystoreTransaction) -> int:
    """Sign governance and every enclave's permissions again (same text, the renewed signer)."""
    layout, signer = tx.layout, tx.ca.permissions
    documents = [(layout.governance_xml, layout.governance_p7s)]
    documents += [(d / PERMISSIONS_XML, d / PERMISSIONS_P7S) for d in enclave_directories(layout)
                  if os.path.lexists(d / PERMISSIONS_XML)]
    for text, p7s in documents:
        tx.write_file(p7s, smime.sign_smime(read_keystore_file(layout, text), signer.cert, signer.key), 0o644)
    return len(documents)


def _renew_in(tx: KeystoreTransaction, kinds: tuple[str, ...], duration: _dt.timedelta) -> list[CaRenewal]:
    layout = tx.stage_keystore()
    before = tx.ca
    written: dict[Path, x509.Certificate] = {}
    results: list[CaRenewal] = []
    for kind in kinds:
        pair = before.identity if kind == "identity" else before.permissions
        target = _cert_file(layout.identity_ca_cert if kind == "identity" else layout.permissions_ca_cert)
        if target not in written:
            written[target] = _renewed(pair, tx.now, duration)
            tx.write_file(target, pki.certificate_pem(written[target]), 0o644)
        cert = written[target]
        results.append(CaRenewal(kind, format(pair.cert.serial_number, "x"), format(cert.serial_number, "x"),
                                 cert.not_valid_after_utc, 0))
    tx.reload_ca()
    if "permissions" in kinds:
        count = _resign_documents(tx)
        results = [r if r.which != "permissions" else
                   CaRenewal(r.which, r.old_serial, r.new_serial, r.not_after, count) for r in results]
    for result in results:
        tx.audit("ca_renew", result.which, {"old_serial": result.old_serial, "new_serial": result.new_serial,
                                           "not_after": iso_utc(result.not_after), "resigned": str(result.resigned)})
    return results


def renew_ca(keystore: Keystore, policy: WorkcellPolicy, now: _dt.datetime,
             which: Iterable[str] = CA_KINDS) -> list[CaRenewal]:
    """Re-issue the chosen CA certificates with their own key and subject, valid ``ca_duration``.

    Renewing the identity CA alone needs no restart.  With the permissions CA renewed,
    governance.p7s and every permissions.p7s are signed again (same text) and every node must be
    restarted together.  A single-CA keystore renews its one certificate whatever ``which`` says.
    The whole change is staged and switched in at once (see the module docstring).

    :raises InputError: ``which`` names something other than identity/permissions, or nothing.
    :raises PassphraseError: the CA keys cannot be decrypted.
    :raises LockError: another process holds the keystore lock.
    :raises KeystoreError: the disk refuses, or a file is refused (planted link, foreign owner).
    """
    kinds = tuple(dict.fromkeys(which))
    if not kinds or any(k not in CA_KINDS for k in kinds):
        raise InputError(None, "which", "one or both of identity, permissions", ",".join(kinds) or "nothing")
    layout = keystore.layout
    if _cert_file(layout.identity_ca_cert) == _cert_file(layout.permissions_ca_cert):
        kinds = CA_KINDS
    with keystore.transaction(now, "ca_renew") as tx:
        return _renew_in(tx, kinds, policy.lifetimes.ca_duration)


# --- rollover (new key) ------------------------------------------------------------------------

def stage_rollover(keystore_root: Path, policy: WorkcellPolicy, now: _dt.datetime, staged_root: Path,
                   *, passphrase: bytes | None = None) -> Keystore:
    """Build a complete new keystore (new CA keys, every policy enclave) at ``staged_root``.

    The live keystore is not touched; nothing is deployed until :func:`swap_keystores`.

    :raises InputError: ``staged_root`` is the live keystore or inside it.
    :raises KeystoreError: ``staged_root`` already holds something, or the disk refuses.
    """
    live, staged = Path(keystore_root).resolve(), Path(staged_root).resolve()
    if staged == live or live in staged.parents:
        raise InputError(None, "--stage", "a directory outside the live keystore", str(staged_root))
    if staged.parent.exists() and staged.parent.stat().st_dev != live.parent.stat().st_dev:
        raise InputError(None, "--stage", "a directory on the same file system as the keystore "
                         "(the swap is one rename)", str(staged_root))
    return init_keystore(Path(staged_root), policy, now, passphrase=passphrase)


def rollover_plan(keystore_root: Path, staged_root: Path, policy: WorkcellPolicy) -> list[str]:
    """The printable steps of a CA key rollover, in order (nothing is executed)."""
    enclaves = ", ".join(e.path for e in policy.enclaves) or "(none)"
    return [
        f"1. Stage: cobot-security ca rollover --stage {staged_root} --keystore {keystore_root} "
        "(new identity and permissions CA keys, every enclave re-issued; the live keystore is untouched).",
        f"2. Check the staged keystore offline: cobot-security verify --keystore {staged_root} "
        "(real DDS Security, on a spare domain).",
        "3. Copy the staged keystore to every host that runs nodes (same path beside the live keystore).",
        f"4. Stop ALL nodes of the cell ({enclaves}): old and new CAs cannot talk to each other "
        "(the DDS plugins honour one CA certificate, no bundle, no cross-signing).",
        f"5. Swap: cobot-security ca rollover --swap {staged_root} --keystore {keystore_root} "
        "(one renameat2 exchange; the old keystore is kept as <keystore>.pre-rollover-<time>).",
        "6. Start all nodes; they load the new identities at start-up.",
        f"7. Verify: cobot-security verify --keystore {keystore_root}; watch /cobot_security/health.",
        "8. Destroy the old CA private keys in <keystore>.pre-rollover-<time>/private once the cell is healthy.",
    ]


def _pre_rollover_name(root: Path, now: _dt.datetime) -> Path:
    stamp = now.astimezone(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    candidate, counter = root.with_name(f"{root.name}.pre-rollover-{stamp}"), 1
    while os.path.lexists(candidate):
        candidate, counter = root.with_name(f"{root.name}.pre-rollover-{stamp}-{counter}"), counter + 1
    return candidate


def swap_keystores(old_root: Path, staged_root: Path, now: _dt.datetime, *,
                   lock_timeout_s: float = 30.0) -> Path:
    """Exchange the live keystore with the staged one in one step; return where the old one went.

    The old keystore ends at ``<old_root>.pre-rollover-<time>``; ``staged_root`` no longer exists.
    The switch is audited in the new keystore (an audit record only: no CA key is needed).

    :raises KeystoreError: either side is not a keystore, or the file system cannot exchange
        atomically (no renameat2, or different file systems).
    :raises LockError: another process holds the live keystore's lock.
    """
    old_root, staged_root = Path(old_root), Path(staged_root)
    Keystore.open(old_root)
    Keystore.open(staged_root)
    backup = _pre_rollover_name(old_root, now)
    with atomic.KeystoreLock(KeystoreLayout(old_root).lock, lock_timeout_s):
        try:
            if not atomic.exchange_paths(staged_root, old_root):
                raise KeystoreError(old_root, "expected a file system supporting renameat2(RENAME_EXCHANGE) "
                                              "for a one-step swap, got none")
            os.rename(staged_root, backup)
            atomic.fsync_dir(old_root.parent)
        except OSError as exc:
            raise KeystoreError(exc.filename or old_root, f"cannot swap keystores: {exc.strerror or exc}") from exc
    new = Keystore.open(old_root, lock_timeout_s=lock_timeout_s)
    identity = new.ca_certificates().identity
    with new.transaction(now, "ca_rollover", needs_ca=False) as tx:
        tx.audit("ca_rollover", str(old_root), {"previous": backup.name,
                                                "identity_ca_serial": format(identity.serial_number, "x")})
    return backup
