"""Keystore test fixtures: small policies built from the model dataclasses (not the YAML loader)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from host_cell import Cell, make_cell

from cobot_security.policy.model import (
    Enclave,
    GovernanceOptions,
    Host,
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


def make_host_policy(**lifetimes: dt.timedelta) -> WorkcellPolicy:
    """A three-machine cell: ca_pc (authority), cell_pc (/cell/arm, /shared), vision_pc (/cell/camera, /shared)."""
    hosts = {"/cell/arm": ("cell_pc",), "/cell/camera": ("vision_pc",), "/shared": ("cell_pc", "vision_pc")}
    base = make_policy(*hosts)
    enclaves = tuple(replace(e, hosts=hosts[e.path]) for e in base.enclaves)
    return replace(base, enclaves=enclaves, lifetimes=replace(base.lifetimes, **lifetimes),
                   hosts=(Host("ca_pc", "authority"), Host("cell_pc"), Host("vision_pc")))


@pytest.fixture
def host_policy() -> WorkcellPolicy:
    """:func:`make_host_policy` with the default lifetimes (90 days, renewed 30 days before)."""
    return make_host_policy()


@pytest.fixture
def cell_with_hosts(tmp_path: Path, host_policy: WorkcellPolicy, fixed_now: dt.datetime) -> Cell:
    """The host cell at ``fixed_now``: cell_pc enrolled (keys born there), vision_pc installed from a bundle."""
    cell = make_cell(tmp_path, host_policy, fixed_now)
    cell.enroll("cell_pc", fixed_now)
    cell.bundle("vision_pc", fixed_now)
    return cell
