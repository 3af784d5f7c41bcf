"""The SROS2-compatible keystore: layout, PKI, S/MIME, the store and its one transaction."""

from cobot_security.keystore.authority import CaKeys, CaPair, load_ca_keys
from cobot_security.keystore.enclaves import EnclaveInfo, EnclaveProblem
from cobot_security.keystore.evidence import (
    VerifyRecord,
    read_verify_result,
    record_verify_result,
)
from cobot_security.keystore.integrity import IntegrityResult, check_integrity
from cobot_security.keystore.layout import (
    ENCLAVE_FILES,
    ENCLAVE_LINKS,
    KeystoreLayout,
    enclave_link_targets,
)
from cobot_security.keystore.manifest import (
    EnclaveRecord,
    Manifest,
    grant_changed,
    read_manifest,
)
from cobot_security.keystore.pki import (
    KEY_TYPES,
    generate_private_key,
    issue_certificate,
    load_certificate,
    load_private_key,
    make_ca,
    private_key_pem,
)
from cobot_security.keystore.smime import (
    extract_smime_content,
    sign_smime,
    verify_smime,
)
from cobot_security.keystore.store import Keystore, init_keystore
from cobot_security.keystore.transaction import KeystoreTransaction

__all__ = [
    "ENCLAVE_FILES",
    "ENCLAVE_LINKS",
    "KEY_TYPES",
    "CaKeys",
    "CaPair",
    "EnclaveInfo",
    "EnclaveProblem",
    "EnclaveRecord",
    "IntegrityResult",
    "Keystore",
    "KeystoreLayout",
    "KeystoreTransaction",
    "Manifest",
    "VerifyRecord",
    "check_integrity",
    "enclave_link_targets",
    "extract_smime_content",
    "generate_private_key",
    "grant_changed",
    "init_keystore",
    "issue_certificate",
    "load_ca_keys",
    "load_certificate",
    "load_private_key",
    "make_ca",
    "private_key_pem",
    "read_manifest",
    "read_verify_result",
    "record_verify_result",
    "sign_smime",
    "verify_smime",
]
