"""The participant security properties each rmw sets for an enclave (pure, no DDS import).

Keeping one definition per middleware means the proof harness loads exactly what a ROS 2 node on
``rmw_cyclonedds_cpp`` or ``rmw_fastrtps_cpp`` would load from
``$ROS_SECURITY_KEYSTORE/enclaves/<enclave>``.  The two differ: Cyclone takes ``file:`` URIs, plugin
library names and its own CRL property; Fast DDS takes ``file://`` URIs (plain ``file:`` is refused
as "Unsupported URI format"), plugin names, and the CRL under the PKI-DH plugin's namespace.
"""

from __future__ import annotations

from pathlib import Path

#: Enclave file → participant property, as rmw_cyclonedds_cpp maps them.
FILE_PROPERTIES: tuple[tuple[str, str], ...] = (
    ("dds.sec.auth.identity_ca", "identity_ca.cert.pem"),
    ("dds.sec.auth.identity_certificate", "cert.pem"),
    ("dds.sec.auth.private_key", "key.pem"),
    ("dds.sec.access.permissions_ca", "permissions_ca.cert.pem"),
    ("dds.sec.access.governance", "governance.p7s"),
    ("dds.sec.access.permissions", "permissions.p7s"),
)

#: The optional certificate revocation list rmw passes when the enclave holds one.  Cyclone's
#: authentication plugin reads it under its vendor name (rmw_cyclonedds_cpp sets the same one).
CRL_PROPERTY = ("org.eclipse.cyclonedds.sec.auth.crl", "crl.pem")

#: The OMG builtin plugins, by the library names rmw_cyclonedds_cpp uses.
PLUGIN_PROPERTIES: tuple[tuple[str, str], ...] = (
    ("dds.sec.auth.library.path", "dds_security_auth"),
    ("dds.sec.auth.library.init", "init_authentication"),
    ("dds.sec.auth.library.finalize", "finalize_authentication"),
    ("dds.sec.crypto.library.path", "dds_security_crypto"),
    ("dds.sec.crypto.library.init", "init_crypto"),
    ("dds.sec.crypto.library.finalize", "finalize_crypto"),
    ("dds.sec.access.library.path", "dds_security_ac"),
    ("dds.sec.access.library.init", "init_access_control"),
    ("dds.sec.access.library.finalize", "finalize_access_control"),
)


def security_properties(enclave_dir: Path) -> list[tuple[str, str]]:
    """Participant QoS properties for the enclave at ``enclave_dir`` (``file:`` URIs, absolute)."""
    base = enclave_dir.absolute()
    props = [(name, f"file:{base / filename}") for name, filename in FILE_PROPERTIES]
    crl_name, crl_file = CRL_PROPERTY
    if (base / crl_file).exists():
        props.append((crl_name, f"file:{base / crl_file}"))
    return props + list(PLUGIN_PROPERTIES)


#: Enclave file → participant property, as rmw_fastrtps_shared_cpp (participant.cpp) maps them.
FASTDDS_FILE_PROPERTIES: tuple[tuple[str, str], ...] = (
    ("dds.sec.auth.builtin.PKI-DH.identity_ca", "identity_ca.cert.pem"),
    ("dds.sec.auth.builtin.PKI-DH.identity_certificate", "cert.pem"),
    ("dds.sec.auth.builtin.PKI-DH.private_key", "key.pem"),
    ("dds.sec.access.builtin.Access-Permissions.permissions_ca", "permissions_ca.cert.pem"),
    ("dds.sec.access.builtin.Access-Permissions.governance", "governance.p7s"),
    ("dds.sec.access.builtin.Access-Permissions.permissions", "permissions.p7s"),
)

#: rmw_fastrtps passes the enclave's CRL, when there is one, under the PKI-DH plugin's name.
FASTDDS_CRL_PROPERTY = ("dds.sec.auth.builtin.PKI-DH.identity_crl", "crl.pem")

#: The builtin plugins, by the names rmw_fastrtps_cpp selects.
FASTDDS_PLUGIN_PROPERTIES: tuple[tuple[str, str], ...] = (
    ("dds.sec.auth.plugin", "builtin.PKI-DH"),
    ("dds.sec.access.plugin", "builtin.Access-Permissions"),
    ("dds.sec.crypto.plugin", "builtin.AES-GCM-GMAC"),
)


def fastdds_security_properties(enclave_dir: Path) -> list[tuple[str, str]]:
    """Participant properties rmw_fastrtps_cpp sets for the enclave (``file://`` URIs, absolute)."""
    base = enclave_dir.absolute()
    props = list(FASTDDS_PLUGIN_PROPERTIES)
    props += [(name, f"file://{base / filename}") for name, filename in FASTDDS_FILE_PROPERTIES]
    crl_name, crl_file = FASTDDS_CRL_PROPERTY
    if (base / crl_file).exists():
        props.append((crl_name, f"file://{base / crl_file}"))
    return props


def loopback_config(max_participants: int = 60) -> str:
    """A Cyclone DDS configuration confining discovery to loopback unicast.

    Proof runs must not depend on multicast routing or leak onto the plant network.
    """
    return (
        "<CycloneDDS><Domain id='any'><General><Interfaces><NetworkInterface name='lo'/>"
        "</Interfaces><AllowMulticast>false</AllowMulticast></General><Discovery>"
        "<ParticipantIndex>auto</ParticipantIndex>"
        f"<MaxAutoParticipantIndex>{max_participants}</MaxAutoParticipantIndex>"
        "<Peers><Peer address='127.0.0.1'/></Peers></Discovery></Domain></CycloneDDS>"
    )
