"""The SROS2-compatible keystore: layout, PKI, S/MIME signing, atomic writes and the store itself."""

from cobot_security.atomic import (
    KeystoreLock,
    make_private_dir,
    staged_dir,
    swap_into_place,
    write_bytes_atomic,
)
from cobot_security.keystore.evidence import VerifyRecord, read_verify_result, record_verify_result
from cobot_security.keystore.integrity import IntegrityResult, check_integrity, write_integrity_manifest
from cobot_security.keystore.layout import ENCLAVE_FILES, ENCLAVE_LINKS, KeystoreLayout, enclave_link_targets
from cobot_security.keystore.pki import (
    KEY_TYPES,
    generate_private_key,
    issue_certificate,
    load_certificate,
    load_private_key,
    make_ca,
    private_key_pem,
)
from cobot_security.keystore.smime import extract_smime_content, sign_smime, verify_smime
from cobot_security.keystore.store import (
    CaCertificates,
    EnclaveInfo,
    Keystore,
    enclave_policy_digest,
    init_keystore,
)

__all__ = [
    "ENCLAVE_FILES",
    "ENCLAVE_LINKS",
    "KEY_TYPES",
    "CaCertificates",
    "EnclaveInfo",
    "IntegrityResult",
    "Keystore",
    "KeystoreLayout",
    "KeystoreLock",
    "VerifyRecord",
    "check_integrity",
    "enclave_link_targets",
    "enclave_policy_digest",
    "extract_smime_content",
    "generate_private_key",
    "init_keystore",
    "issue_certificate",
    "load_certificate",
    "load_private_key",
    "make_ca",
    "make_private_dir",
    "private_key_pem",
    "read_verify_result",
    "record_verify_result",
    "sign_smime",
    "staged_dir",
    "swap_into_place",
    "verify_smime",
    "write_bytes_atomic",
    "write_integrity_manifest",
]
