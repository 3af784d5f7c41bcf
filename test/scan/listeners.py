"""Loopback TCP listeners for the service scan tests: a fake UR dashboard server and a silent port."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

UR_BANNER = b"Connected: Universal Robots Dashboard Server\n"


@contextlib.contextmanager
def listener(banner: bytes = b"", host: str = "127.0.0.1") -> Iterator[int]:
    """Accept connections on ``host``:<free port>, send ``banner`` (if any), yield the port; always close."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((host, 0))
    server.listen(16)
    server.settimeout(0.2)
    stop = threading.Event()
    clients: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except (socket.timeout, OSError):
                continue
            clients.append(conn)
            if banner:
                with contextlib.suppress(OSError):
                    conn.sendall(banner)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stop.set()
        thread.join(5)
        for conn in clients:
            conn.close()
        server.close()


def closed_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on (bound then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
