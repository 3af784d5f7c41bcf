"""rmw_zenoh configuration from the policy and the keystore: one router config, one session config per enclave.

Security on rmw_zenoh is mutual TLS plus the router's access control, not DDS permissions.  What
is written (default ``<keystore>/zenoh/``, swapped in whole):

- ``router.json5``: router mode, listening on TLS only, trusting only the keystore's identity CA,
  requiring a client certificate (``enable_mtls``), with the access control of
  :mod:`cobot_security.policy.zenoh_acl` (default deny, subjects by certificate common name);
- ``router/cert.pem`` + ``router/key.pem`` (0600): the router's own identity, issued here by the
  identity CA (so rendering needs the CA key, like ``init``) for the policy's enclave lifetime;
- ``sessions/<enclave path>.json5``: client mode (every message goes through the router, which
  enforces the rules; a peer-to-peer link would bypass them), TLS only, the enclave's own
  ``cert.pem``/``key.pem`` and identity CA from the keystore — a node gets it as
  ``ZENOH_SESSION_CONFIG_URI``.

Enclave certificates carry no DNS name, so ``verify_name_on_connect`` is off; the CA and the
client-certificate check are what authenticate.  Zenoh's TLS takes no CRL, so an enclave whose
current certificate is revoked is left out of the rules (it can connect, and do nothing).
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass
from pathlib import Path

from cobot_security import atomic
from cobot_security.errors import KeystoreError
from cobot_security.keystore import pki
from cobot_security.keystore.authority import CaPair
from cobot_security.keystore.layout import CERT, KeystoreLayout
from cobot_security.keystore.revocation import revoked_current_enclaves
from cobot_security.keystore.store import Keystore
from cobot_security.policy.keyexpr import compute_policy_zenoh_grants
from cobot_security.policy.model import WorkcellPolicy
from cobot_security.policy.zenoh_acl import render_access_control
from cobot_security.tree import remove_tree

ZENOH_DIR = "zenoh"
ROUTER_CONFIG = "router.json5"
ROUTER_DIR = "router"
SESSIONS_DIR = "sessions"
ROUTER_SUBJECT = "CN=zenoh_router"
DEFAULT_LISTEN = "tls/[::]:7447"
DEFAULT_CONNECT = "tls/localhost:7447"


@dataclass(frozen=True)
class ZenohLayout:
    """Every path of a rendered Zenoh configuration directory."""

    root: Path

    @property
    def router_config(self) -> Path:
        """The router's configuration (``ZENOH_ROUTER_CONFIG_URI`` of ``rmw_zenohd``)."""
        return self.root / ROUTER_CONFIG

    @property
    def router_cert(self) -> Path:
        """The router's TLS certificate, issued by the identity CA."""
        return self.root / ROUTER_DIR / "cert.pem"

    @property
    def router_key(self) -> Path:
        """The router's TLS private key (0600)."""
        return self.root / ROUTER_DIR / "key.pem"

    def session_config(self, enclave: str) -> Path:
        """The session configuration of ``enclave`` (``ZENOH_SESSION_CONFIG_URI`` of its node)."""
        return self.root / SESSIONS_DIR / (enclave.strip("/") + ".json5")


def default_zenoh_dir(keystore_root: Path) -> Path:
    """Where ``render zenoh`` writes and ``verify --middleware zenoh`` reads by default."""
    return Path(keystore_root) / ZENOH_DIR


def _tls(ca: Path, cert: Path, key: Path, *, listen: bool) -> dict[str, object]:
    tls: dict[str, object] = {"root_ca_certificate": str(ca), "enable_mtls": True, "verify_name_on_connect": False,
                              "connect_certificate": str(cert), "connect_private_key": str(key)}
    if listen:
        tls.update({"listen_certificate": str(cert), "listen_private_key": str(key)})
    return tls


def _base(mode: str, listen: list[str], connect: list[str], tls: dict[str, object]) -> dict[str, object]:
    return {
        "mode": mode,
        "listen": {"endpoints": listen},
        "connect": {"endpoints": connect},
        # No discovery on the plant network: sessions reach the router at its configured endpoint only.
        "scouting": {"multicast": {"enabled": False}, "gossip": {"enabled": False}},
        "transport": {"link": {"protocols": ["tls"], "tls": tls}},
    }


def router_document(policy: WorkcellPolicy, layout: KeystoreLayout, zenoh: ZenohLayout, listen: str,
                    excluded: frozenset[str] = frozenset()) -> dict[str, object]:
    """The router configuration: TLS-only listener, mTLS against the identity CA, the policy's ACL.

    :raises PolicyError: a granted name cannot be expressed as a key expression.
    """
    document = _base("router", [listen], [], _tls(layout.identity_ca_cert.absolute(), zenoh.router_cert.absolute(),
                                                  zenoh.router_key.absolute(), listen=True))
    document["access_control"] = render_access_control(compute_policy_zenoh_grants(policy), policy.domain_ids,
                                                       excluded)
    return document


def session_document(enclave_dir: Path, connect: str) -> dict[str, object]:
    """One enclave's session configuration: client of the router over mTLS with the enclave's identity."""
    base = enclave_dir.absolute()
    return _base("client", [], [connect], _tls(base / "identity_ca.cert.pem", base / CERT, base / "key.pem",
                                               listen=False))


def _dump(document: dict[str, object]) -> bytes:
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()


def _issue_router_identity(identity: CaPair, policy: WorkcellPolicy, staged: ZenohLayout,
                           now: _dt.datetime) -> str:
    key = pki.generate_private_key()
    cert = pki.issue_certificate(ROUTER_SUBJECT, key.public_key(), identity.cert, identity.key,
                                 now - _dt.timedelta(minutes=5), now + policy.lifetimes.enclave_duration)
    atomic.make_dir(staged.router_cert.parent, 0o700)
    atomic.write_bytes_atomic(staged.router_key, pki.private_key_pem(key, None), 0o600)
    atomic.write_bytes_atomic(staged.router_cert, pki.certificate_pem(cert), 0o644)
    return format(cert.serial_number, "x")


def render_zenoh(keystore: Keystore, policy: WorkcellPolicy, out_dir: Path, now: _dt.datetime, *,
                 listen: str = DEFAULT_LISTEN, connect: str = DEFAULT_CONNECT) -> ZenohLayout:
    """Write the router and every enclave's session configuration into ``out_dir`` (replaced whole).

    :raises PolicyError: a granted name cannot be expressed as a key expression.
    :raises PassphraseError: the identity CA key cannot be decrypted.
    :raises KeystoreError: an enclave is missing from the keystore, or the disk refuses.
    """
    layout = keystore.layout
    final = ZenohLayout(Path(out_dir).absolute())
    missing = [e.path for e in policy.enclaves if not (layout.enclave_dir(e.path) / CERT).is_file()]
    if missing:
        raise KeystoreError(layout.enclave_dir(missing[0]), "enclave missing from the keystore: run cobot-security "
                                                            "reconcile (or init) before rendering")
    excluded = revoked_current_enclaves(layout)
    router = router_document(policy, layout, final, listen, excluded)
    try:
        # The transaction holds the keystore lock, unlocks the identity CA once and audits the issue.
        with keystore.transaction(now, "render_zenoh") as tx:
            final.root.parent.mkdir(parents=True, exist_ok=True)
            with atomic.staged_dir(final.root.parent, final.root.name, 0o700) as staging:
                staged = ZenohLayout(staging)
                serial = _issue_router_identity(tx.ca.identity, policy, staged, now)
                atomic.write_bytes_atomic(staged.router_config, _dump(router), 0o644)
                for enclave in policy.enclaves:
                    target = staged.session_config(enclave.path)
                    target.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
                    atomic.write_bytes_atomic(target, _dump(session_document(layout.enclave_dir(enclave.path),
                                                                             connect)), 0o644)
                old = atomic.swap_into_place(staging, final.root)
            if old is not None:
                remove_tree(old)
            tx.audit("issue", "zenoh_router", {"serial": serial, "purpose": "zenoh router TLS"})
    except OSError as exc:
        raise KeystoreError(exc.filename or final.root, f"cannot write the Zenoh configuration: "
                                                        f"{exc.strerror or exc}") from exc
    return final
