"""Cross-vendor proof: Fast DDS and Cyclone DDS participants, secured from one keystore, in one domain.

A mixed cell works only if each vendor's DDS Security plugins complete the authentication
handshake with the other's.  Every enclave of the policy joins once on each vendor and every granted
topic flow is checked in the four writer/reader vendor combinations; the two same-vendor ones are the
controls that show the run itself worked.  Every participant pair authenticates on its own, and
which side initiates is decided by the participants' GUIDs (derived from the certificates), so a
partial count is the shape of a one-sided incompatibility.  It is a finding, never a skip: the
counts are reported as measured.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cobot_security.dds.plan import Flow, plan_verification
from cobot_security.dds.runner import AgentResult, AgentSpec, run_agents
from cobot_security.keystore.layout import KeystoreLayout
from cobot_security.policy.model import CYCLONEDDS, FASTDDS, WorkcellPolicy


@dataclass(frozen=True)
class CrossVendorResult:
    """Granted flows delivered from ``writer_vendor`` writers to ``reader_vendor`` readers (of ``flows``)."""

    writer_vendor: str
    reader_vendor: str
    delivered: int
    flows: int
    #: Enclave pairs (writer, reader) of which no flow delivered in this orientation.
    silent_pairs: tuple[tuple[str, str], ...] = ()

    @property
    def passed(self) -> bool:
        """Every flow delivered."""
        return self.delivered == self.flows


COMBINATIONS = ((FASTDDS, FASTDDS), (CYCLONEDDS, CYCLONEDDS), (FASTDDS, CYCLONEDDS), (CYCLONEDDS, FASTDDS))


def measure_cross_vendor(policy: WorkcellPolicy, keystore_root: Path, *, domain_id: int | None = None,
                         timeout_s: float = 60.0, settle_s: float = 5.0) -> list[CrossVendorResult]:
    """Every enclave joins twice, once per vendor; every granted flow is checked in all four
    writer/reader vendor combinations (the two same-vendor ones are the run's controls).

    The run lasts until both controls are complete (at most ``timeout_s``: on a loaded host a
    handshake retried after a lost message takes 20 s and more), then ``settle_s`` more in which
    cross-vendor flows still get counted.  It never waits for every cross-vendor flow: with these
    versions they never all deliver.

    :raises DdsUnavailableError: an agent cannot start.
    """
    plan = plan_verification(policy, keystore_root, domain_id=domain_id, denied_sample=0)
    flows = [f for f in plan.flows if f.topic.startswith("rt/")]
    layout = KeystoreLayout(keystore_root)
    specs = [AgentSpec(f"{vendor}:{spec.name}", plan.domain_id, layout.enclave_dir(spec.name), spec.writers,
                       spec.readers, middleware=vendor)
             for spec in plan.agents if spec.enclave_dir is not None and spec.name in {e.path for e in policy.enclaves}
             for vendor in (FASTDDS, CYCLONEDDS)]

    def got(results: Mapping[str, AgentResult], flow: Flow, w_vendor: str, r_vendor: str) -> bool:
        return (flow.topic, f"{w_vendor}:{flow.writer}") in results[f"{r_vendor}:{flow.reader}"].received

    def controls_complete(r: Mapping[str, AgentResult]) -> bool:
        return all(got(r, f, vendor, vendor) for f in flows for vendor in (FASTDDS, CYCLONEDDS))

    results = run_agents(specs, controls_complete, timeout_s=timeout_s, grace_s=settle_s)
    report = []
    for w_vendor, r_vendor in COMBINATIONS:
        delivered = {(f.writer, f.reader) for f in flows if got(results, f, w_vendor, r_vendor)}
        silent = sorted({(f.writer, f.reader) for f in flows} - delivered)
        report.append(CrossVendorResult(w_vendor, r_vendor, sum(got(results, f, w_vendor, r_vendor) for f in flows),
                                        len(flows), tuple(silent)))
    return report
