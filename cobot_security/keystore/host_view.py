"""The authority's view of each host: the key-less public tree it gave that host, and its records.

On the CA machine, ``.cobot_security/hosts/<host>/`` is a keystore layout without any key:
``public/`` (CA certificates, CRL), ``enclaves/governance.*`` and, per enclave of the host, the
certificate and signed permissions the host holds.  ``host.json`` beside them records per enclave
the current serial (and the previous one, accepted once more after an answer that never
arrived), where its key was born, and the nonces of recent requests (replay).

The view is what a host keystore must be, minus its keys: the integrity manifest the authority
signs for the host is computed over it, and an answer carries the files in which the host's tree
differs from it.  It changes inside a keystore transaction, staged and switched in as a whole.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from cobot_security import atomic
from cobot_security.clock import iso_utc
from cobot_security.errors import KeystoreError
from cobot_security.json_input import parse_json
from cobot_security.keystore.enclaves import write_layout_links
from cobot_security.keystore.files import read_keystore_file
from cobot_security.keystore.layout import (
    CERT,
    CRL,
    GOVERNANCE_P7S,
    GOVERNANCE_XML,
    IDENTITY_CA_CERT,
    PERMISSIONS_CA_CERT,
    PERMISSIONS_P7S,
    PERMISSIONS_XML,
    SINGLE_CA_CERT,
    KeystoreLayout,
)
from cobot_security.keystore.manifest import EnclaveRecord, record_from_json
from cobot_security.tree import remove_tree

VIEW_FILE = "host.json"
VIEW_VERSION = 1
#: Request nonces remembered per host (replay); older than the longest accepted request age go.
MAX_NONCES = 1024
_PUBLIC_NAMES = (SINGLE_CA_CERT, IDENTITY_CA_CERT, PERMISSIONS_CA_CERT, CRL)


@dataclass(frozen=True)
class HostView:
    """``host.json`` of one host's view (values; change with the ``with_*`` methods)."""

    host: str
    enclaves: Mapping[str, EnclaveRecord] = field(default_factory=dict)
    previous: Mapping[str, str] = field(default_factory=dict)  #: enclave → the serial before the current one
    nonces: Mapping[str, _dt.datetime] = field(default_factory=dict)

    def accepts_serial(self, path: str, serial: str) -> bool:
        """Whether ``serial`` is the certificate of ``path`` this host holds (or held before the last answer)."""
        record = self.enclaves.get(path)
        return record is not None and serial in (record.serial, self.previous.get(path))

    def with_record(self, path: str, record: EnclaveRecord) -> HostView:
        """This view with ``path``'s record replaced; a new serial keeps the old one as ``previous``."""
        old = self.enclaves.get(path)
        previous = dict(self.previous)
        if old is not None and old.serial != record.serial:
            previous[path] = old.serial
        return replace(self, enclaves={**self.enclaves, path: record}, previous=previous)

    def without(self, paths: set[str]) -> HostView:
        """This view without the records of ``paths`` (enclaves no longer on the host)."""
        return replace(self, enclaves={p: r for p, r in self.enclaves.items() if p not in paths},
                       previous={p: s for p, s in self.previous.items() if p not in paths})

    def with_nonce(self, nonce: str, at: _dt.datetime, forget_before: _dt.datetime) -> HostView:
        """This view remembering ``nonce``; nonces older than ``forget_before`` are dropped."""
        kept = {n: t for n, t in self.nonces.items() if t >= forget_before}
        kept[nonce] = at
        newest = sorted(kept.items(), key=lambda item: item[1])[-MAX_NONCES:]
        return replace(self, nonces=dict(newest))

    def to_bytes(self) -> bytes:
        """The view record as written."""
        document = {"version": VIEW_VERSION, "host": self.host,
                    "enclaves": {p: {**r.to_json(), **({"previous_serial": self.previous[p]}
                                                       if p in self.previous else {})}
                                 for p, r in sorted(self.enclaves.items())},
                    "nonces": {n: iso_utc(t) for n, t in sorted(self.nonces.items())}}
        return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()


def read_view(layout: KeystoreLayout, host: str) -> HostView:
    """The authority's record of ``host`` (an empty one when the host never got anything).

    :raises KeystoreError: the record is refused or malformed.
    """
    path = layout.host_view(host) / VIEW_FILE
    if not os.path.lexists(path):
        return HostView(host)
    try:
        document = parse_json(read_keystore_file(layout, path))
        entries = document["enclaves"]
        enclaves = {str(p): record_from_json(str(p), e) for p, e in entries.items()}
        previous = {str(p): str(e["previous_serial"]) for p, e in entries.items() if "previous_serial" in e}
        nonces = {str(n): _dt.datetime.fromisoformat(str(t)) for n, t in document.get("nonces", {}).items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        raise KeystoreError(path, "expected our record of a host (host.json)") from None
    return HostView(host, enclaves, previous, nonces)


def _copy(source_layout: KeystoreLayout, source: Path, target: Path) -> None:
    """Copy one public file or layout link from the CA keystore into the view."""
    if source.is_symlink():
        if os.path.lexists(target):
            os.unlink(target)
        os.symlink(os.readlink(source), target)
        return
    atomic.write_bytes_atomic(target, read_keystore_file(source_layout, source), 0o644, durable=False)


def sync_public(ca: KeystoreLayout, view: KeystoreLayout) -> None:
    """Make the view's ``public/`` and governance the CA keystore's (certificates, CRL, links).

    :raises OSError: the disk refuses (the caller's transaction wraps it).
    """
    for directory in (view.public_dir, view.enclaves_dir):
        atomic.make_dir(directory, 0o755)
    for name in _PUBLIC_NAMES:
        source, target = ca.public_dir / name, view.public_dir / name
        if os.path.lexists(source):
            _copy(ca, source, target)
        elif os.path.lexists(target):
            os.unlink(target)
    for name in (GOVERNANCE_XML, GOVERNANCE_P7S):
        _copy(ca, ca.enclaves_dir / name, view.enclaves_dir / name)


def put_enclave(view: KeystoreLayout, path: str, cert_pem: bytes, permissions_xml: bytes,
                permissions_p7s: bytes) -> None:
    """Write enclave ``path``'s public files and layout links into the view (replacing what was there).

    :raises OSError: the disk refuses (the caller's transaction wraps it).
    """
    directory = view.enclave_dir(path)
    current = view.enclaves_dir
    for token in path[1:].split("/"):
        current = current / token
        if not current.is_dir():
            atomic.make_dir(current, 0o755)
    for name, data in ((CERT, cert_pem), (PERMISSIONS_XML, permissions_xml), (PERMISSIONS_P7S, permissions_p7s)):
        atomic.write_bytes_atomic(directory / name, data, 0o644, durable=False)
    for entry in directory.iterdir():
        if entry.is_symlink():
            os.unlink(entry)
    write_layout_links(directory, path, link_crl=os.path.lexists(view.crl))


def remove_enclave(view: KeystoreLayout, path: str) -> None:
    """Remove enclave ``path`` from the view, and the namespace directories it leaves empty."""
    directory = view.enclave_dir(path)
    if directory.is_dir() and not directory.is_symlink():
        remove_tree(directory)
    parent = directory.parent
    while parent != view.enclaves_dir and parent.is_dir() and not any(parent.iterdir()):
        parent.rmdir()
        parent = parent.parent


def view_enclave_files(view: KeystoreLayout, path: str) -> tuple[bytes, bytes, bytes]:
    """(cert.pem, permissions.xml, permissions.p7s) of enclave ``path`` in the view.

    :raises KeystoreError: a file is missing or refused.
    """
    directory = view.enclave_dir(path)
    return tuple(read_keystore_file(view, directory / name)  # type: ignore[return-value]
                 for name in (CERT, PERMISSIONS_XML, PERMISSIONS_P7S))


def issued_serials(layout: KeystoreLayout, path: str) -> dict[str, str]:
    """Host → serial of the certificate of enclave ``path`` each host holds (for revocation).

    :raises KeystoreError: a host record is refused or malformed.
    """
    found: dict[str, str] = {}
    if not layout.hosts_dir.is_dir() or layout.hosts_dir.is_symlink():
        return found
    for entry in sorted(layout.hosts_dir.iterdir()):
        if entry.name.startswith(".") or not entry.is_dir() or entry.is_symlink():
            continue
        record = read_view(layout, entry.name).enclaves.get(path)
        if record is not None:
            found[entry.name] = record.serial
    return found
