"""What the health probes share: the subjects keystore-wide findings are named by, the certificate reader.

Every probe takes its facts as arguments (``now``, ``environ``, the uid, graph snapshots) and
returns a list of :class:`~cobot_security.status.Finding` named by a check of
:mod:`cobot_security.checks`.  Probes never print and never carry key material in a
message; a probe that raises is turned into an ERROR finding by the reporter.
"""

from __future__ import annotations

from pathlib import Path

from cryptography import x509

from cobot_security.keystore import pki
from cobot_security.keystore.files import read_keystore_file
from cobot_security.keystore.layout import KeystoreLayout

#: Subject of the findings about the keystore as a whole.
KEYSTORE_SUBJECT = "keystore"
#: Subject of the finding about the CA keys (private/).
CA_SUBJECT = "ca"


def load_certificate_file(layout: KeystoreLayout, path: Path) -> x509.Certificate:
    """The PEM certificate at ``path`` of the keystore (a planted link or a stranger's file is refused).

    :raises KeystoreError: when it is missing, refused, unreadable or not a PEM certificate.
    """
    return pki.load_certificate(read_keystore_file(layout, path), path)
