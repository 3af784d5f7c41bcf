"""The demo cell's plant-side services on loopback, so that the scans have something real to audit.

``python -m cobot_security.demo.cell_services --opcua-port P`` runs until SIGINT/SIGTERM:

* the cell PC's OPC UA server (asyncua) on ``127.0.0.1:P``, hardened the way the posture
  controls require: only Basic256Sha256 with SignAndEncrypt, user name tokens only (no anonymous),
  an RSA 2048 application instance certificate made at start (self-signed; the password of its one
  user is random and never printed);
* a simulated arm controller whose controller services (the catalog's ports: UR dashboard with its
  banner, client interfaces, RTDE, Modbus) listen on its maintenance address only
  (:data:`MAINTENANCE_ADDRESS`), not on the address the cell reaches it at
  (:data:`CELL_ADDRESS`): a controller hardened as SR 7.7 asks, which the service scan of the
  cell-facing address confirms.

It prints ``ready`` on stdout once every listener is up.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as _dt
import functools
import secrets
import signal
import sys
from collections.abc import Sequence

from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.user_managers import UserManager
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cobot_security.clock import utc_now

__all__ = ["APP_URI", "CELL_ADDRESS", "MAINTENANCE_ADDRESS", "make_server_certificate", "opcua_url"]

APP_URI = "urn:cobot-security:demo:cell_pc"
#: Where the cell reaches the simulated controller (the scan target).
CELL_ADDRESS = "127.0.0.2"
#: The simulated controller's maintenance interface, where its services listen.
MAINTENANCE_ADDRESS = "127.0.0.3"
UR_BANNER = b"Connected: Universal Robots Dashboard Server\n"
START_TIMEOUT_S = 20.0


def opcua_url(port: int) -> str:
    """The demo OPC UA server's discovery URL."""
    return f"opc.tcp://127.0.0.1:{port}/cobot/"


def make_server_certificate(now: _dt.datetime, common_name: str, app_uri: str, bits: int = 2048,
                            days: int = 365) -> tuple[bytes, bytes]:
    """(certificate DER, private key DER): a self-signed OPC UA application instance certificate."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    usage = x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=True,
                          data_encipherment=True, key_agreement=False, key_cert_sign=False, crl_sign=False,
                          encipher_only=False, decipher_only=False)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _dt.timedelta(days=1)).not_valid_after(now + _dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(app_uri),
                                                    x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    key_der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.DER), key_der


class _OneUser(UserManager):
    """Accepts one user name with a random password; refuses everything else, anonymous included."""

    def __init__(self) -> None:
        self.password = secrets.token_urlsafe(24)

    def get_user(self, iserver: object, username: str | None = None, password: str | None = None,
                 certificate: object = None) -> User | None:
        if username == "operator" and password is not None and secrets.compare_digest(password, self.password):
            return User(role=UserRole.User)
        return None


async def _start_opcua(port: int) -> object:
    from asyncua import Server, ua  # deferred: asyncua is heavy and only the demo's OPC UA server needs it

    server = Server(user_manager=_OneUser())
    await asyncio.wait_for(server.init(), START_TIMEOUT_S)
    server.set_endpoint(opcua_url(port))
    server.set_server_name("cobot-security demo cell PC")
    await server.set_application_uri(APP_URI)
    cert_der, key_der = make_server_certificate(utc_now(), "cobot-security demo cell PC", APP_URI)
    await server.load_certificate(cert_der)
    await server.load_private_key(key_der)
    server.set_security_policy([ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt])
    server.set_identity_tokens([ua.UserNameIdentityToken])
    await asyncio.wait_for(server.start(), START_TIMEOUT_S)
    return server


async def _controller_service(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, banner: bytes) -> None:
    with contextlib.suppress(OSError):
        if banner:
            writer.write(banner)
            await writer.drain()
        writer.close()


async def _serve(opcua_port: int, controller_ports: Sequence[int]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    server = await _start_opcua(opcua_port)
    listeners = []
    for port in controller_ports:
        banner = UR_BANNER if port == 29999 else b""
        listeners.append(await asyncio.start_server(functools.partial(_controller_service, banner=banner),
                                                    MAINTENANCE_ADDRESS, port))
    print("ready", flush=True)
    try:
        await stop.wait()
    finally:
        for listener in listeners:
            listener.close()
        await asyncio.wait_for(server.stop(), START_TIMEOUT_S)  # type: ignore[attr-defined]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the services until SIGINT/SIGTERM; 2 on bad arguments."""
    parser = argparse.ArgumentParser(prog="python -m cobot_security.demo.cell_services")
    parser.add_argument("--opcua-port", type=int, required=True)
    parser.add_argument("--controller-port", type=int, action="append", default=[])
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.opcua_port, args.controller_port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
