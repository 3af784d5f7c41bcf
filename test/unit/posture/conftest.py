"""Posture test fixtures: the assets folder."""

from __future__ import annotations

from pathlib import Path

import pytest

ASSETS = Path(__file__).resolve().parents[2] / "assets" / "posture"


@pytest.fixture
def assets() -> Path:
    """The posture test assets folder."""
    return ASSETS
