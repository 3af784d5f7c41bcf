"""Reading the package's launch arguments inside an ``OpaqueFunction`` (launch context → values)."""

from __future__ import annotations

from pathlib import Path

from launch.launch_context import LaunchContext
from launch.substitutions import LaunchConfiguration

from cobot_security.launch_plan.arguments import parse_launch_bool

__all__ = ["config_bool", "config_path", "config_text"]


def config_text(context: LaunchContext, name: str) -> str:
    """The value of launch argument ``name``."""
    return LaunchConfiguration(name).perform(context)


def config_path(context: LaunchContext, name: str) -> Path:
    """Launch argument ``name`` as a path."""
    return Path(config_text(context, name))


def config_bool(context: LaunchContext, name: str) -> bool:
    """Launch argument ``name`` as true/false.

    :raises InputError: the value is neither, naming the argument.
    """
    return parse_launch_bool(config_text(context, name), name)
