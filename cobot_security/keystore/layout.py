"""Every path of a keystore in one place, in the layout sros2 writes and rmw loads as-is.

::

    <root>/public/{identity_ca,permissions_ca}.cert.pem   (single CA: ca.cert.pem + symlinks)
    <root>/private/{identity_ca,permissions_ca}.key.pem   (0700 dir, 0600 keys)
    <root>/enclaves/governance.{xml,p7s}
    <root>/enclaves/<enclave path>/{cert,key}.pem, permissions.{xml,p7s} + symlinks to the CA
        certificates and governance.p7s
    <root>/public/crl.pem                  (identity CA's CRL; each enclave links crl.pem to it)
    <root>/private/audit.key               (HMAC key of the audit log, 0600)
    <root>/.cobot_security/                (ours; rmw never looks there)
        manifest.json, lock, transaction.json, audit.log, audit.head, revoked.json,
        integrity.json(.p7s, .sig), last_verify.json, network_check.json, history/, incidents/, scans/,
        hosts/<host>/ (CA machine: what each host holds), host.json + pending/ (host keystore)

Every path under ``.cobot_security`` is a property here; no other module builds one by hand.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cobot_security.errors import KeystoreError
from cobot_security.names import NameContext, validate_enclave_path, validate_host_name

IDENTITY_CA_CERT = "identity_ca.cert.pem"
PERMISSIONS_CA_CERT = "permissions_ca.cert.pem"
IDENTITY_CA_KEY = "identity_ca.key.pem"
PERMISSIONS_CA_KEY = "permissions_ca.key.pem"
SINGLE_CA_CERT = "ca.cert.pem"
SINGLE_CA_KEY = "ca.key.pem"
GOVERNANCE_XML = "governance.xml"
GOVERNANCE_P7S = "governance.p7s"
CRL = "crl.pem"
AUDIT_KEY = "audit.key"

CERT = "cert.pem"
KEY = "key.pem"
PERMISSIONS_XML = "permissions.xml"
PERMISSIONS_P7S = "permissions.p7s"

#: Every file rmw expects in an enclave directory (security_common's required file list).
ENCLAVE_FILES: tuple[str, ...] = (
    IDENTITY_CA_CERT,
    CERT,
    KEY,
    PERMISSIONS_CA_CERT,
    GOVERNANCE_P7S,
    PERMISSIONS_XML,
    PERMISSIONS_P7S,
)
#: Optional enclave files rmw loads when present (rmw_dds_common get_security_files: ``crl.pem``).
OPTIONAL_ENCLAVE_FILES: tuple[str, ...] = (CRL,)
#: The enclave files that are relative symlinks into the shared part of the keystore.
ENCLAVE_LINKS: tuple[str, ...] = (IDENTITY_CA_CERT, PERMISSIONS_CA_CERT, GOVERNANCE_P7S)

META_DIR = ".cobot_security"


def enclave_depth(path: str) -> int:
    """Number of name tokens in an (already validated) enclave path: ``/cell/arm`` → 2."""
    return len(path.strip("/").split("/"))


def enclave_link_targets(path: str) -> dict[str, str]:
    """Relative symlink targets of an enclave's shared files, as sros2 writes them.

    For ``/a/b`` (depth 2): ``identity_ca.cert.pem -> ../../../public/identity_ca.cert.pem`` and
    ``governance.p7s -> ../../governance.p7s``.
    """
    depth = enclave_depth(path)
    return {
        IDENTITY_CA_CERT: "../" * (depth + 1) + f"public/{IDENTITY_CA_CERT}",
        PERMISSIONS_CA_CERT: "../" * (depth + 1) + f"public/{PERMISSIONS_CA_CERT}",
        GOVERNANCE_P7S: "../" * depth + GOVERNANCE_P7S,
    }


def enclave_crl_target(path: str) -> str:
    """Relative symlink target of an enclave's optional ``crl.pem``: ``/a/b`` → ``../../../public/crl.pem``."""
    return "../" * (enclave_depth(path) + 1) + f"public/{CRL}"


@dataclass(frozen=True)
class KeystoreLayout:
    """Paths of the keystore rooted at ``root``; computing a path never touches the disk."""

    root: Path

    @property
    def public_dir(self) -> Path:
        """Directory of the CA certificates (world-readable)."""
        return self.root / "public"

    @property
    def private_dir(self) -> Path:
        """Directory of the CA private keys (0700)."""
        return self.root / "private"

    @property
    def enclaves_dir(self) -> Path:
        """Directory holding governance and one directory per enclave."""
        return self.root / "enclaves"

    @property
    def meta_dir(self) -> Path:
        """Our own bookkeeping (manifest, lock), in a name rmw never reads."""
        return self.root / META_DIR

    @property
    def identity_ca_cert(self) -> Path:
        """The identity CA certificate (a symlink to ca.cert.pem in single-CA mode)."""
        return self.public_dir / IDENTITY_CA_CERT

    @property
    def permissions_ca_cert(self) -> Path:
        """The permissions CA certificate (a symlink to ca.cert.pem in single-CA mode)."""
        return self.public_dir / PERMISSIONS_CA_CERT

    @property
    def single_ca_cert(self) -> Path:
        """The one CA certificate of a single-CA (sros2-style) keystore."""
        return self.public_dir / SINGLE_CA_CERT

    @property
    def identity_ca_key(self) -> Path:
        """The identity CA private key."""
        return self.private_dir / IDENTITY_CA_KEY

    @property
    def permissions_ca_key(self) -> Path:
        """The permissions CA private key."""
        return self.private_dir / PERMISSIONS_CA_KEY

    @property
    def single_ca_key(self) -> Path:
        """The one CA private key of a single-CA keystore."""
        return self.private_dir / SINGLE_CA_KEY

    @property
    def governance_xml(self) -> Path:
        """The unsigned governance document (kept for review)."""
        return self.enclaves_dir / GOVERNANCE_XML

    @property
    def governance_p7s(self) -> Path:
        """The governance document signed by the permissions CA."""
        return self.enclaves_dir / GOVERNANCE_P7S

    @property
    def manifest(self) -> Path:
        """Our per-enclave record (serial, not_after, policy digest)."""
        return self.meta_dir / "manifest.json"

    @property
    def crl(self) -> Path:
        """The identity CA's certificate revocation list, linked as ``crl.pem`` into every enclave."""
        return self.public_dir / CRL

    @property
    def audit_log(self) -> Path:
        """The tamper-evident JSON-lines audit log of every mutating operation."""
        return self.meta_dir / "audit.log"

    @property
    def audit_head(self) -> Path:
        """MAC'd pointer to the last audit record, so that a deleted tail is detectable."""
        return self.meta_dir / "audit.head"

    @property
    def audit_key(self) -> Path:
        """The audit log's HMAC key (32 random bytes, 0600), beside the CA keys."""
        return self.private_dir / AUDIT_KEY

    @property
    def revoked(self) -> Path:
        """Our record of revoked enclave certificates (serial, enclave, reason, time)."""
        return self.meta_dir / "revoked.json"

    @property
    def lock(self) -> Path:
        """The flock file serialising mutating operations."""
        return self.meta_dir / "lock"

    @property
    def journal(self) -> Path:
        """Present while a keystore transaction is changing things: its absence means "consistent"."""
        return self.meta_dir / "transaction.json"

    @property
    def integrity_json(self) -> Path:
        """The integrity manifest: every public artifact's SHA-256 (readable copy)."""
        return self.meta_dir / "integrity.json"

    @property
    def integrity_p7s(self) -> Path:
        """The integrity manifest signed (S/MIME) by the permissions CA; the only copy trusted."""
        return self.meta_dir / "integrity.json.p7s"

    @property
    def integrity_sig(self) -> Path:
        """A raw signature of the readable copy, checked in process before the S/MIME one (integrity.py)."""
        return self.meta_dir / "integrity.json.sig"

    @property
    def history_dir(self) -> Path:
        """Archived versions of every enclave (``history/<path with '~'>/<version>/``)."""
        return self.meta_dir / "history"

    @property
    def last_verify(self) -> Path:
        """The record of the last ``cobot-security verify`` (posture evidence)."""
        return self.meta_dir / "last_verify.json"

    @property
    def policy_snapshot(self) -> Path:
        """The last policy a change validated, signed by the permissions CA (a cache: see policy_snapshot)."""
        return self.meta_dir / "policy_snapshot.json"

    @property
    def network_check(self) -> Path:
        """The record of the last ``cobot-security network check`` (posture evidence)."""
        return self.meta_dir / "network_check.json"

    @property
    def scans_dir(self) -> Path:
        """Stored results of ``cobot-security scan`` (posture evidence)."""
        return self.meta_dir / "scans"

    @property
    def incidents_dir(self) -> Path:
        """Incident records opened by the supervisor's playbooks."""
        return self.meta_dir / "incidents"

    @property
    def hosts_dir(self) -> Path:
        """On the CA machine: the public tree the authority last gave each host (one directory per host)."""
        return self.meta_dir / "hosts"

    def host_view(self, host: str) -> Path:
        """The authority's view of ``host``'s keystore: a key-less keystore layout plus ``host.json``.

        :raises InvalidNameError: not a host name.
        """
        return self.hosts_dir / validate_host_name(host, NameContext(field="host"))

    @property
    def host_file(self) -> Path:
        """On a host keystore: which host it is, its pending request and the last package installed."""
        return self.meta_dir / "host.json"

    @property
    def pending_dir(self) -> Path:
        """On a host keystore: private keys generated here, waiting for their certificate (0700)."""
        return self.meta_dir / "pending"

    def pending_key(self, path: str) -> Path:
        """The pending private key of enclave ``path`` (``/cell/arm`` → ``pending/~cell~arm.key.pem``).

        :raises InvalidNameError: unsafe enclave path.
        """
        validate_enclave_path(path, NameContext(field="enclave"))
        return self.pending_dir / (path.replace("/", "~") + ".key.pem")

    def enclave_dir(self, path: str) -> Path:
        """Directory of enclave ``path`` (e.g. ``/cell/arm`` → ``enclaves/cell/arm``).

        :raises InvalidNameError: the name is relative, has ``..`` or bad characters.
        :raises KeystoreError: the directory resolves outside ``enclaves/`` (e.g. via a symlink).
        """
        validate_enclave_path(path, NameContext(field="enclave"))
        candidate = self.enclaves_dir.joinpath(*path[1:].split("/"))
        base = os.path.realpath(self.enclaves_dir)
        resolved = os.path.realpath(candidate)
        if os.path.commonpath([base, resolved]) != base or resolved == base:
            raise KeystoreError(candidate, f"enclave {path}: expected a directory inside {base}, "
                                           f"got one resolving to {resolved}")
        return candidate

    def enclave_file(self, path: str, name: str) -> Path:
        """One of :data:`ENCLAVE_FILES` (or the optional ``crl.pem``) of enclave ``path``.

        :raises InvalidNameError: see :meth:`enclave_dir`.
        :raises KeystoreError: see :meth:`enclave_dir`, or ``name`` is not an enclave file.
        """
        allowed = ENCLAVE_FILES + OPTIONAL_ENCLAVE_FILES
        if name not in allowed:
            raise KeystoreError(self.enclaves_dir, f"expected one of {', '.join(allowed)}, got {name!r}")
        return self.enclave_dir(path) / name
