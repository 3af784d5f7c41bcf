"""Workcell policy: model, YAML loader, sros2 import, lint and the DDS XML compilers."""

from cobot_security.policy.model import (
    Enclave,
    GovernanceOptions,
    Lifetimes,
    NodeGrants,
    Protection,
    WorkcellPolicy,
)

__all__ = ["Enclave", "GovernanceOptions", "Lifetimes", "NodeGrants", "Protection", "WorkcellPolicy"]
