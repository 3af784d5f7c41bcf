"""Cross-vendor: Fast DDS and Cyclone DDS participants secured from one keystore, in one domain.

Measured on Debian 12 (Fast DDS 2.9.1, Cyclone DDS 0.10.2): participants of the same vendor always
talk; a Fast DDS / Cyclone DDS pair authenticates only in one orientation (Cyclone logs "Begin
handshake reply failed: Failed to convert octet sequence to ASN1 integer" when Fast DDS initiates),
so only part of the cross-vendor flows deliver.  This test holds that finding: if it starts failing
because every flow delivers, the incompatibility is gone and docs/middlewares.md must say so.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from cobot_security.dds.cross_vendor import measure_cross_vendor
from cobot_security.keystore.store import init_keystore
from cobot_security.policy.load import load_policy
from cobot_security.policy.model import CYCLONEDDS, FASTDDS

pytestmark = pytest.mark.dds


def test_mixed_cell_delivers_same_vendor_fully_and_cross_vendor_partly(
    tmp_path: Path, dds_domain: int, example_policy_path: Path
) -> None:
    policy = dataclasses.replace(load_policy(example_policy_path), domain_ids=(dds_domain,))
    root = tmp_path / "keystore"
    init_keystore(root, policy, dt.datetime.now(dt.timezone.utc).replace(microsecond=0))

    results = {(r.writer_vendor, r.reader_vendor): r for r in measure_cross_vendor(policy, root)}

    for vendor in (FASTDDS, CYCLONEDDS):  # the run's controls
        control = results[(vendor, vendor)]
        assert control.flows > 20 and control.passed, control
    for orientation in ((FASTDDS, CYCLONEDDS), (CYCLONEDDS, FASTDDS)):
        mixed = results[orientation]
        assert 0 < mixed.delivered < mixed.flows, mixed
        assert mixed.silent_pairs
