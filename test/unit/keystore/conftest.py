"""Keystore test fixtures: small policies built from the model dataclasses (not the YAML loader)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from cobot_security.policy.model import (
    Enclave,
    GovernanceOptions,
    Lifetimes,
    NodeGrants,
    WorkcellPolicy,
)


def make_policy(*paths: str, enclave_days: int = 90, ca_days: int = 3650) -> WorkcellPolicy:
    """A policy whose enclaves each hold one node publishing ``status`` and subscribing ``cmd``."""
    enclaves = tuple(
        Enclave(
            path=path,
            nodes=(NodeGrants(name=path.rsplit("/", 1)[1], namespace="/cell", publish=("status",),
                              subscribe=("cmd",)),),
        )
        for path in paths
    )
    return WorkcellPolicy(
        version=1,
        name="test_cell",
        domain_ids=(0,),
        governance=GovernanceOptions(),
        lifetimes=Lifetimes(ca_duration=dt.timedelta(days=ca_days), enclave_duration=dt.timedelta(days=enclave_days)),
        enclaves=enclaves,
    )


PolicyFactory = Callable[..., WorkcellPolicy]


@pytest.fixture
def policy() -> WorkcellPolicy:
    """Two enclaves at different depths."""
    return make_policy("/cell/arm_driver", "/gripper")


@pytest.fixture
def policy_factory() -> PolicyFactory:
    """:func:`make_policy`, for tests that need other enclave paths or lifetimes."""
    return make_policy
