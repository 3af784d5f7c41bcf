"""Real asyncua servers on 127.0.0.1 for the OPC UA audit tests: one insecure, one hardened."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import socket
import threading
from collections.abc import AsyncIterator

from cobot_security.demo.cell_services import make_server_certificate

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
APP_URI = "urn:cobot-security:test:hardened"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Users:
    """Accepts one user name/password; refuses everything else (including anonymous)."""

    def get_user(self, iserver: object, username: str | None = None, password: str | None = None,
                 certificate: object = None) -> object:
        from asyncua.crypto.permission_rules import User, UserRole

        if username == "operator" and password == "correct horse":
            return User(role=UserRole.User)
        return None


@contextlib.asynccontextmanager
async def run_server(hardened: bool, now: dt.datetime) -> AsyncIterator[str]:
    """Start a real asyncua server on 127.0.0.1:<free port>, yield its URL, always stop it."""
    from asyncua import Server, ua

    server = Server(user_manager=_Users()) if hardened else Server()
    await asyncio.wait_for(server.init(), START_TIMEOUT_S)
    url = f"opc.tcp://127.0.0.1:{free_port()}/cobot/"
    server.set_endpoint(url)
    server.set_server_name("cobot-security test")
    if hardened:
        await server.set_application_uri(APP_URI)
        cert_der, key_der = make_server_certificate(now, "cobot-security test server", APP_URI)
        await server.load_certificate(cert_der)
        await server.load_private_key(key_der)
        server.set_security_policy([ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt])
        server.set_identity_tokens([ua.UserNameIdentityToken])
    else:
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        server.set_identity_tokens([ua.AnonymousIdentityToken])
    started = False
    try:
        await asyncio.wait_for(server.start(), START_TIMEOUT_S)
        started = True
        yield url
    finally:
        if started:
            await asyncio.wait_for(server.stop(), STOP_TIMEOUT_S)


class ServerThread:
    """A real asyncua server on its own event loop in a thread, so sync code (the CLI) can scan it."""

    def __init__(self, hardened: bool, now: dt.datetime) -> None:
        self._hardened = hardened
        self._now = now
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._context: contextlib.AbstractAsyncContextManager[str] | None = None
        self.url = ""

    def __enter__(self) -> ServerThread:
        self._thread.start()
        try:
            self._context = run_server(self._hardened, self._now)
            future = asyncio.run_coroutine_threadsafe(self._context.__aenter__(), self._loop)
            self.url = future.result(START_TIMEOUT_S + 5)
        except BaseException:
            self._stop_loop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self._context is not None:
                future = asyncio.run_coroutine_threadsafe(self._context.__aexit__(None, None, None), self._loop)
                future.result(STOP_TIMEOUT_S + 5)
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            self._loop.close()
