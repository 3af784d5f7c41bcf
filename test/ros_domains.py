"""The one source of ROS 2 / DDS domain ids for the tests: always in range, never shared while in use.

Every test that joins a domain leases its id here.  A lease is an exclusive ``flock`` on
``$TMPDIR/cobot_security-test-domains/<id>.lock``, so two pytest runs on one machine (two
clones, a developer and CI) never pick the same id at the same time, and a crashed holder frees
its ids with its last file descriptor.  Ids come from :data:`DOMAIN_IDS` only:

* 0 is every ROS user's default domain, 42 the example cell's, 230 ``verify --self-test``'s;
* Fast DDS (rclpy's default rmw) exits the process for an id above 232 (its port mapping), and
  Cyclone DDS with the security plugins refused participants on 231 and 232 here.

Within a process ids are handed out round-robin from a pid-dependent start, so a just-released id
is the last one this process would take again (no late packet of the previous test can reach the
next one).
"""

from __future__ import annotations

import fcntl
import itertools
import os
import tempfile
from pathlib import Path

#: Ids the tests may use (see the module docstring for each exclusion).
DOMAIN_IDS: tuple[int, ...] = tuple(d for d in range(1, 230) if d != 42)
LOCK_DIR = Path(tempfile.gettempdir()) / "cobot_security-test-domains"

_next_index = itertools.count((os.getpid() * 37) % len(DOMAIN_IDS))


class DomainLease:
    """One leased domain id; :meth:`release` (or process exit) frees it."""

    def __init__(self, domain_id: int, fd: int) -> None:
        self.domain_id = domain_id
        self._fd: int | None = fd

    def release(self) -> None:
        """Free the id for other tests (idempotent)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def __int__(self) -> int:
        return self.domain_id


def lease_domain() -> DomainLease:
    """Lease a free domain id from :data:`DOMAIN_IDS`.

    :raises RuntimeError: every id is leased (far more concurrent tests than ids).
    """
    LOCK_DIR.mkdir(mode=0o777, exist_ok=True)
    for _ in range(len(DOMAIN_IDS)):
        domain_id = DOMAIN_IDS[next(_next_index) % len(DOMAIN_IDS)]
        fd = os.open(LOCK_DIR / f"{domain_id}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return DomainLease(domain_id, fd)
    raise RuntimeError(f"all {len(DOMAIN_IDS)} test domain ids are leased (see {LOCK_DIR})")
