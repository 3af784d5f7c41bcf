"""Skip re-validating a policy file this keystore has seen before: a signed snapshot of the last one.

``cobot-security enclave create`` run once per enclave (the way sros2's ``create_enclave`` is used)
spent more time importing PyYAML and validating a policy of a few hundred enclaves than issuing the
enclave (issue 11).  A change that validated a policy leaves the result, once it has committed (a
keystore opened with the policy as read, :meth:`~cobot_security.keystore.store.Keystore.open`), in
``.cobot_security/policy_snapshot.json``: the policy as data
(:mod:`cobot_security.policy.snapshot`) under the key of the file's bytes and of the loader,
sealed by the permissions CA like the documents the authority sends to hosts
(:mod:`cobot_security.keystore.signed_json`).  The next command given the same bytes rebuilds the
policy from it; anything else — other bytes, another loader, another CA, a signature that does not
verify, a planted or foreign file — is a miss, and the file is read and validated as always.

The seal matters: the snapshot decides the grants the CA signs, so a process that may write the
keystore but does not hold the (passphrase-protected) CA key must not be able to plant one.  The
snapshot is a cache, never evidence: it is written without fsync and its loss costs one validation.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import NamedTuple

from cobot_security import atomic
from cobot_security.errors import InputError, KeystoreError, PolicyError
from cobot_security.input_file import MAX_YAML_BYTES, decode_input_text, read_input_bytes
from cobot_security.keystore import pki
from cobot_security.keystore.authority import CaPair
from cobot_security.keystore.files import read_keystore_file
from cobot_security.keystore.layout import KeystoreLayout
from cobot_security.keystore.signed_json import open_document, seal_document
from cobot_security.policy.model import WorkcellPolicy
from cobot_security.policy.snapshot import SNAPSHOT_FORMAT, policy_from_data, policy_to_data, snapshot_key


class RememberedPolicy(NamedTuple):
    """A validated policy, the key of the bytes it came from, and whether the keystore's snapshot gave it."""

    policy: WorkcellPolicy
    key: str
    from_snapshot: bool


def _snapshot(layout: KeystoreLayout, key: str, source: str, now: _dt.datetime) -> WorkcellPolicy | None:
    if not layout.policy_snapshot.exists():
        return None
    try:
        trusted = pki.load_certificate(read_keystore_file(layout, layout.permissions_ca_cert),
                                       layout.permissions_ca_cert)
        payload = open_document(read_keystore_file(layout, layout.policy_snapshot), trusted, now,
                                layout.policy_snapshot)
        if payload.get("format") != SNAPSHOT_FORMAT or payload.get("key") != key:
            return None
        return policy_from_data(payload.get("policy"), source)
    except (InputError, KeystoreError, ValueError):
        return None


def load_policy_remembered(layout: KeystoreLayout, path: Path, now: _dt.datetime) -> RememberedPolicy:
    """The policy at ``path``: from the keystore's snapshot when it holds these bytes, else validated.

    :raises PolicyError: the file cannot be read or is not a valid policy (exactly as
        :func:`~cobot_security.policy.load.load_policy`: a snapshot only ever holds a valid one).
    """
    data = read_input_bytes(path, "policy file", MAX_YAML_BYTES, PolicyError)
    key = snapshot_key(data)
    policy = _snapshot(layout, key, str(path), now)
    if policy is not None:
        return RememberedPolicy(policy, key, True)
    # Imported here: PyYAML and the validating loader are what a snapshot saves (~60 ms).
    from cobot_security.policy.load import load_policy_text

    return RememberedPolicy(load_policy_text(decode_input_text(data, path, PolicyError), str(path)), key, False)


def remember_policy(layout: KeystoreLayout, remembered: RememberedPolicy, signer: CaPair) -> None:
    """Leave ``remembered`` as the keystore's snapshot, sealed by ``signer`` (the permissions CA).

    Best effort: a keystore that cannot take the file costs the next command one validation.
    """
    payload = {"format": SNAPSHOT_FORMAT, "key": remembered.key, "policy": policy_to_data(remembered.policy)}
    try:
        atomic.write_bytes_atomic(layout.policy_snapshot, seal_document(payload, signer.cert, signer.key), 0o600,
                                  durable=False, sync_data=False)
    except OSError:
        return
