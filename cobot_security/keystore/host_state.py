"""What a host keystore knows about itself (``.cobot_security/host.json``): its host and its exchanges.

``host`` names the policy host the keystore belongs to (set by the first ``host request`` or
``host install``; a package for another host is refused), ``request`` the nonce and kind of the
request waiting for its answer, ``installed`` the creation time of the last package installed (an
older one is refused: no rollback to revoked or superseded material).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from dataclasses import dataclass

from cobot_security.clock import iso_utc
from cobot_security.errors import KeystoreError
from cobot_security.json_input import parse_json
from cobot_security.keystore.files import read_keystore_file
from cobot_security.keystore.layout import KeystoreLayout
from cobot_security.names import NameContext, validate_host_name

HOST_STATE_VERSION = 1


@dataclass(frozen=True)
class HostState:
    """The content of ``host.json``."""

    host: str
    request_nonce: str | None = None
    request_kind: str | None = None
    installed: _dt.datetime | None = None

    def to_bytes(self) -> bytes:
        """The record as written."""
        document: dict[str, object] = {"version": HOST_STATE_VERSION, "host": self.host}
        if self.request_nonce is not None:
            document["request"] = {"nonce": self.request_nonce, "kind": self.request_kind}
        if self.installed is not None:
            document["installed"] = iso_utc(self.installed)
        return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()


def read_host_state(layout: KeystoreLayout) -> HostState | None:
    """The keystore's host record, or None when it is not (yet) a host keystore.

    :raises KeystoreError: the record is refused or malformed.
    """
    path = layout.host_file
    if not os.path.lexists(path):
        return None
    try:
        document = parse_json(read_keystore_file(layout, path))
        host = validate_host_name(str(document["host"]), NameContext(file=str(path), field="host"))
        request = document.get("request") or {}
        installed = document.get("installed")
        return HostState(host, request.get("nonce"), request.get("kind"),
                         _dt.datetime.fromisoformat(installed) if installed else None)
    except (ValueError, KeyError, TypeError, AttributeError):
        raise KeystoreError(path, "expected our host record (host.json)") from None
