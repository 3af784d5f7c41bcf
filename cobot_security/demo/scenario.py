"""The demo's scripted scenario as data: what happens when, and what a newcomer should watch."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    """One scenario step, starting at ``at`` (a fraction of the demo's duration).

    ``turns_red`` names the controls the step's event turns ERROR (from OK or WARN); every other
    control keeps its level.
    """

    key: str
    at: float
    title: str
    watch: str
    turns_red: tuple[str, ...] = ()


STEPS: tuple[Step, ...] = (
    Step("healthy", 0.0, "healthy cell",
         "every control software can evidence here is OK (demo attestations, network proof, scans); red only "
         "where DDS Security is missing (security_env: the PyPI rclpy has none)"),
    Step("renewal_window", 0.12, "a certificate enters its renewal window",
         "/cell/gripper is re-issued with 25 days left: per_node_identity turns WARN"),
    Step("rotation", 0.27, "keystore_manager rotates the due enclave; rolling restart",
         "rotate_due re-issues /cell/gripper; only the gripper node restarts; per_node_identity back to OK"),
    Step("revocation", 0.45, "an enclave is revoked",
         "/cell/mes_bridge goes on the CRL: per_node_identity ERROR (a revoked identity is still named)",
         ("per_node_identity",)),
    Step("rogue_node", 0.62, "a node that is not in the policy joins the graph",
         "/cell/rogue_laptop appears: per_node_authorization ERROR (graph_conformance)",
         ("per_node_authorization",)),
    Step("tamper", 0.80, "an artifact is tampered with",
         "enclaves/cell/arm_driver/permissions.xml is edited: software_integrity ERROR (keystore_integrity); its "
         "signed copy no longer matches, which per_node_authorization (already red) also reports",
         ("software_integrity",)),
)


def step_at(fraction: float) -> Step:
    """The step in force at ``fraction`` (0..1) of the demo."""
    current = STEPS[0]
    for step in STEPS:
        if fraction >= step.at:
            current = step
    return current
