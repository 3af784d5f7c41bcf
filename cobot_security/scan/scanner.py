"""The bounded TCP connect scanner: asyncio, one semaphore, one pacing lock, a banner read with a timeout.

Hard caps bound concurrency, connection rate and every timeout, whatever the caller asks for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from cobot_security.errors import InputError

__all__ = [
    "BANNER_BYTES",
    "MAX_CONCURRENCY",
    "MAX_RATE",
    "MAX_TIMEOUT_S",
    "PortResult",
    "ScanLimits",
    "scan_ports",
]

#: Hard caps: a scan never opens more connections at once, or starts them faster, than this.
MAX_CONCURRENCY = 64
MAX_RATE = 200.0
MAX_TIMEOUT_S = 30.0
BANNER_BYTES = 512


@dataclass(frozen=True)
class ScanLimits:
    """Bounds of one scan: simultaneous connections, connection starts per second, per-step timeout."""

    concurrency: int = 16
    rate: float = 50.0
    timeout_s: float = 2.0

    def validate(self) -> ScanLimits:
        """Return self when within the hard caps.

        :raises InputError: for a value outside its cap.
        """
        if not 1 <= self.concurrency <= MAX_CONCURRENCY:
            raise InputError(None, "--concurrency", f"1 to {MAX_CONCURRENCY}", str(self.concurrency))
        if not 0 < self.rate <= MAX_RATE:
            raise InputError(None, "--rate", f"connections per second in (0, {MAX_RATE:g}]", str(self.rate))
        if not 0 < self.timeout_s <= MAX_TIMEOUT_S:
            raise InputError(None, "--timeout", f"seconds in (0, {MAX_TIMEOUT_S:g}]", str(self.timeout_s))
        return self


@dataclass(frozen=True)
class PortResult:
    """What one TCP connect found: open or not, and the banner (decoded, possibly empty)."""

    host: str
    port: int
    open: bool
    banner: str = ""
    error: str = ""


class _Pacer:
    """Spaces connection starts at least ``1/rate`` seconds apart (one lock, monotonic clock)."""

    def __init__(self, rate: float) -> None:
        self._interval = 1.0 / rate
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self._lock:
            loop = asyncio.get_running_loop()
            delay = self._next - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self._next = loop.time() + self._interval


async def _probe_port(host: str, port: int, timeout_s: float) -> PortResult:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
    except (asyncio.TimeoutError, TimeoutError):
        return PortResult(host, port, False, error="timeout")
    except OSError as exc:
        return PortResult(host, port, False, error=exc.strerror or type(exc).__name__)
    banner = b""
    try:
        banner = await asyncio.wait_for(reader.read(BANNER_BYTES), timeout_s)
    except (asyncio.TimeoutError, TimeoutError, OSError):
        banner = b""
    finally:
        writer.close()
        try:
            await asyncio.wait_for(writer.wait_closed(), timeout_s)
        except (asyncio.TimeoutError, TimeoutError, OSError):
            pass
    return PortResult(host, port, True, banner.decode("utf-8", "replace").strip())


async def scan_ports(hosts: Sequence[str], ports: Sequence[int], limits: ScanLimits) -> list[PortResult]:
    """TCP connect every (host, port), at most ``limits.concurrency`` at once and ``limits.rate``
    starts per second, each connect and banner read bounded by ``limits.timeout_s``.
    """
    limits.validate()
    semaphore = asyncio.Semaphore(limits.concurrency)
    pacer = _Pacer(limits.rate)

    async def one(host: str, port: int) -> PortResult:
        async with semaphore:
            await pacer.wait()
            return await _probe_port(host, port, limits.timeout_s)

    return list(await asyncio.gather(*(one(h, p) for h in hosts for p in ports)))
