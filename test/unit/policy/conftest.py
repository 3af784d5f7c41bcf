"""Fixtures of the policy tests: where their sample policies, golden files and sros2 inputs live."""

from __future__ import annotations

from pathlib import Path

import pytest

ASSETS = Path(__file__).resolve().parents[2] / "assets"


@pytest.fixture
def policy_assets() -> Path:
    """test/assets/policies: small good and deliberately bad policy YAML files."""
    return ASSETS / "policies"


@pytest.fixture
def golden_dir() -> Path:
    """test/assets/golden: compiled XML checked byte for byte."""
    return ASSETS / "golden"


@pytest.fixture
def sros2_assets() -> Path:
    """test/assets/sros2: sros2 policy XML inputs written for these tests."""
    return ASSETS / "sros2"
