"""The tests' domain ids: always in range for Fast DDS and secured Cyclone DDS, never shared while leased."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from ros_domains import DOMAIN_IDS, lease_domain

TEST_ROOT = Path(__file__).resolve().parents[1]


def test_ids_stay_inside_what_every_middleware_accepts() -> None:
    assert min(DOMAIN_IDS) >= 1 and max(DOMAIN_IDS) <= 229  # Fast DDS aborts above 232; secure Cyclone refused 231-232
    assert 0 not in DOMAIN_IDS and 42 not in DOMAIN_IDS and 230 not in DOMAIN_IDS


def test_leases_are_unique_and_exclusive_across_processes() -> None:
    leases = [lease_domain() for _ in range(40)]
    try:
        ids = [lease.domain_id for lease in leases]
        assert len(set(ids)) == len(ids)
        assert set(ids) <= set(DOMAIN_IDS)
        # Another process never gets an id this one holds.
        code = ("import sys; sys.path.insert(0, %r); from ros_domains import lease_domain; "
                "print(' '.join(str(lease_domain().domain_id) for _ in range(40)))" % str(TEST_ROOT))
        other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
        assert not set(map(int, other.stdout.split())) & set(ids)
    finally:
        for lease in leases:
            lease.release()
    again = lease_domain()  # released ids are leasable again
    again.release()


def test_no_test_derives_a_domain_from_its_pid() -> None:
    # The flake this replaces: 170 + pid % 30 + 40 reached 233..239 and Fast DDS exited pytest.
    offenders = [str(path.relative_to(TEST_ROOT)) for path in TEST_ROOT.rglob("*.py")
                 if re.search(r"(?i)domain\w*\s*=.*getpid\(\)", path.read_text())]
    assert offenders == []
