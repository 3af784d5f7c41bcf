"""Launch arguments of the package's launch files: their defaults and how their values are read.

Pure: the environment is passed in, never read here.
"""

from __future__ import annotations

from collections.abc import Mapping

from cobot_security.errors import InputError
from cobot_security.resources import default_keystore, shipped_file

__all__ = ["parse_launch_bool", "stack_defaults"]


def stack_defaults(environ: Mapping[str, str]) -> dict[str, str]:
    """Default launch arguments of security_stack.launch.py (the DESIGN.md parameter defaults)."""
    return {
        "keystore": str(default_keystore(environ)),
        "policy": str(shipped_file("policies/workcell.yaml")),
        "controls": str(shipped_file("policies/posture_controls.yaml")),
        "attestations": str(shipped_file("policies/attestations.yaml")),
        "domain_id": environ.get("ROS_DOMAIN_ID", "0") or "0",
        "period_s": "1.0",
        "stale_after_s": "3.0",
    }


def parse_launch_bool(text: str, field_name: str) -> bool:
    """A launch argument's ``true``/``false`` (any case, also 1/0, yes/no) as a bool.

    :raises InputError: anything else, naming the argument.
    """
    lowered = text.strip().lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise InputError(None, field_name, "true or false", repr(text))
