"""Roll an enclave back to an archived version, as one keystore transaction.

The restored identity (certificate, key, permissions and their signature) is copied from the
history into a staged directory, with the rmw layout's links made afresh (so a rollback never
revives an old CRL or a planted link); the live version is archived when the two are exchanged,
so a rollback can itself be rolled back.
"""

from __future__ import annotations

import datetime as _dt
import os

from cobot_security.errors import KeystoreError
from cobot_security.keystore import pki, smime
from cobot_security.keystore.audit import AuditEvent
from cobot_security.keystore.enclaves import write_layout_links
from cobot_security.keystore.files import read_keystore_file
from cobot_security.keystore.history import (
    DEFAULT_RETENTION,
    HistoryVersion,
    choose_version,
)
from cobot_security.keystore.layout import CERT, KEY, PERMISSIONS_P7S, PERMISSIONS_XML
from cobot_security.keystore.manifest import EnclaveRecord
from cobot_security.keystore.store import Keystore
from cobot_security.keystore.transaction import KeystoreTransaction, StagedEnclave
from cobot_security.policy.permissions import document_grant_digest

#: The files that make up an enclave's identity and grant, with their modes.
IDENTITY_FILES: dict[str, int] = {CERT: 0o644, KEY: 0o600, PERMISSIONS_XML: 0o644, PERMISSIONS_P7S: 0o644}


def _restore_into(tx: KeystoreTransaction, version: HistoryVersion, staged: StagedEnclave) -> EnclaveRecord:
    """Copy ``version``'s identity into the staged directory; re-sign its grant if the CA was renewed.

    A renewed permissions CA has a new serial, and the DDS plugin finds the signer by issuer and
    serial, so an older signature would no longer verify: the same grant is signed again.
    """
    layout = tx.layout
    data = {name: read_keystore_file(layout, version.directory / name) for name in IDENTITY_FILES}
    try:
        smime.verify_smime(data[PERMISSIONS_P7S], layout.permissions_ca_cert, at=tx.now,
                           source=version.directory / PERMISSIONS_P7S)
    except KeystoreError:
        data[PERMISSIONS_P7S] = smime.sign_smime(data[PERMISSIONS_XML], tx.ca.permissions.cert, tx.ca.permissions.key)
    try:
        for name, mode in IDENTITY_FILES.items():
            tx.write_file(staged.directory / name, data[name], mode)
        write_layout_links(staged.directory, version.enclave, link_crl=os.path.lexists(layout.crl))
    except OSError as exc:
        raise KeystoreError(exc.filename or staged.target, f"cannot restore enclave {version.enclave}: "
                                                           f"{exc.strerror or exc}") from exc
    cert = pki.load_certificate(data[CERT], version.directory / CERT)
    known = tx.manifest.enclaves.get(version.enclave)
    return EnclaveRecord(format(cert.serial_number, "x"), cert.not_valid_after_utc,
                         document_grant_digest(data[PERMISSIONS_XML], version.directory / PERMISSIONS_XML),
                         known.key_origin if known is not None else "keystore")


def rollback_enclave(keystore: Keystore, path: str, now: _dt.datetime, version: str | None = None,
                     *, retention: int = DEFAULT_RETENTION) -> HistoryVersion:
    """Restore the newest (or the given) still-valid version of enclave ``path``; return it.

    :raises KeystoreError: no restorable version, or the disk refuses.
    :raises PassphraseError: the CA keys cannot be decrypted.
    :raises LockError: another process holds the keystore lock.
    """
    directory = keystore.layout.enclave_dir(path)
    with keystore.transaction(now, "rollback", retention=retention) as tx:
        chosen = choose_version(tx.layout, path, now, tx.ca.identity.cert, version)
        current = tx.manifest.enclaves.get(path)
        if os.path.lexists(directory / CERT):
            try:
                from_serial = format(pki.load_certificate(read_keystore_file(tx.layout, directory / CERT),
                                                          directory / CERT).serial_number, "x")
            except KeystoreError:
                from_serial = current.serial if current is not None else ""
        else:
            from_serial = ""
        staged = tx.stage_enclave(path, archive=True)
        try:
            staged.record = _restore_into(tx, chosen, staged)
        except BaseException:
            tx.discard(staged)
            raise
        staged.events.append(AuditEvent("rollback", path, {"version": chosen.version, "from_serial": from_serial,
                                                           "to_serial": staged.record.serial}))
    return chosen
