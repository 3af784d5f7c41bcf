"""Health test fixtures: small model-built policies and real keystores issued at a frozen time."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest

from cobot_security.keystore.layout import KeystoreLayout
from cobot_security.keystore.store import init_keystore
from cobot_security.policy.model import (
    Enclave,
    GovernanceOptions,
    Lifetimes,
    NodeGrants,
    WorkcellPolicy,
)

ISSUED = dt.datetime(2026, 11, 29, 12, 0, 0, tzinfo=dt.timezone.utc)


def make_policy(
    *paths: str,
    enclave_days: int = 90,
    governance: GovernanceOptions | None = None,
    publish: tuple[str, ...] = ("status",),
    domain_ids: tuple[int, ...] = (0,),
) -> WorkcellPolicy:
    """One node per enclave, named after the last token, in /cell, publishing ``publish``."""
    enclaves = tuple(
        Enclave(path=path, nodes=(NodeGrants(name=path.rsplit("/", 1)[1], namespace="/cell",
                                             publish=publish, subscribe=("cmd",)),))
        for path in paths
    )
    return WorkcellPolicy(
        version=1,
        name="health_cell",
        domain_ids=domain_ids,
        governance=governance or GovernanceOptions(),
        lifetimes=Lifetimes(enclave_duration=dt.timedelta(days=enclave_days)),
        enclaves=enclaves,
    )


@pytest.fixture
def policy() -> WorkcellPolicy:
    """Two enclaves at different depths."""
    return make_policy("/cell/arm_driver", "/gripper")


KeystoreFactory = Callable[..., KeystoreLayout]


@pytest.fixture
def build_keystore(tmp_path: Path) -> KeystoreFactory:
    """Build a keystore for a policy at a given issue time; returns its layout."""
    counter = iter(range(1000))

    def build(policy: WorkcellPolicy, now: dt.datetime = ISSUED) -> KeystoreLayout:
        root = tmp_path / f"ks{next(counter)}"
        init_keystore(root, policy, now)
        return KeystoreLayout(root)

    return build


@pytest.fixture
def layout(build_keystore: KeystoreFactory, policy: WorkcellPolicy) -> KeystoreLayout:
    """A complete keystore for :func:`policy` issued at :data:`ISSUED`."""
    return build_keystore(policy)


@pytest.fixture
def issued() -> dt.datetime:
    """The frozen time the keystore fixtures are issued at."""
    return ISSUED


@pytest.fixture
def policy_factory() -> Callable[..., WorkcellPolicy]:
    """:func:`make_policy`, for tests that need other enclaves, grants or governance."""
    return make_policy
