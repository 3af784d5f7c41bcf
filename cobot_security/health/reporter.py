"""The health reporter core: run every probe on facts passed in and collect their Findings.

No timers, no ROS: the ``health_reporter`` node calls :func:`collect_findings` on its timer with
``now``, the process environment and a graph snapshot; the CLI calls
:func:`collect_offline_findings`.  A probe that raises becomes an ERROR finding naming the probe
and the exception type (never its text, which might quote file content), so a broken probe is
loud, never silently absent.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cobot_security import checks
from cobot_security.health import (
    certificate_probes,
    drift_probes,
    environment_probes,
    evidence_probes,
    graph_probes,
    host_probes,
    key_file_probes,
    signed_document_probes,
)
from cobot_security.health.graph_probes import GraphFacts
from cobot_security.keystore.layout import KeystoreLayout
from cobot_security.policy.model import WorkcellPolicy
from cobot_security.status import Finding, Level

PROBE_SUBJECT = "probe"


@dataclass(frozen=True)
class ReporterConfig:
    """Everything the probes need besides the per-run facts (now, environment, graph)."""

    keystore: Path
    policy: WorkcellPolicy
    warn_days: int = 30
    error_days: int = 7
    expected_uid: int = 0
    host: str = "localhost"
    proof_max_age_days: int = 7
    #: Stored scan results (``cobot-security scan``); None: ``<keystore>/.cobot_security/scans``.
    scan_results_dir: Path | None = None
    #: A stored scan or network check older than this is a warning.
    scan_max_age_days: int = 7


@dataclass(frozen=True)
class _ProbeRun:
    name: str
    check: str
    run: Callable[[], list[Finding]]


def _run(probe: _ProbeRun) -> list[Finding]:
    try:
        return list(probe.run())
    except Exception as exc:  # noqa: BLE001 - fail closed: any probe failure is an ERROR finding
        return [Finding(
            probe.check, PROBE_SUBJECT, Level.ERROR,
            f"probe {probe.name} raised {type(exc).__name__}",
            (("probe", probe.name),),
        )]


def _probe_runs(
    config: ReporterConfig, now: _dt.datetime, environ: Mapping[str, str], graph: GraphFacts | None
) -> list[_ProbeRun]:
    layout = KeystoreLayout(Path(config.keystore))
    # A member host's keystore holds only its own enclaves: the keystore probes look at those.
    policy = host_probes.keystore_scope(layout, config.policy, config.host)
    runs = [
        _ProbeRun("probe_certificates", checks.CERT_EXPIRY,
                  lambda: certificate_probes.probe_certificates(
                      layout, policy, now, config.warn_days, config.error_days)),
        _ProbeRun("probe_permissions", checks.PERMISSIONS_VALIDITY,
                  lambda: signed_document_probes.probe_permissions(layout, policy, now)),
        _ProbeRun("probe_governance", checks.GOVERNANCE,
                  lambda: signed_document_probes.probe_governance(layout, policy, now=now)),
        _ProbeRun("probe_crl", checks.CRL, lambda: certificate_probes.probe_crl(layout, now)),
        _ProbeRun("probe_key_modes", checks.KEY_MODES,
                  lambda: key_file_probes.probe_key_modes(layout, config.expected_uid)),
        _ProbeRun("probe_integrity", checks.KEYSTORE_INTEGRITY, lambda: key_file_probes.probe_integrity(layout, now)),
        _ProbeRun("probe_audit_log", checks.AUDIT_LOG, lambda: key_file_probes.probe_audit_log(layout)),
        _ProbeRun("probe_host_assignment", checks.HOST_ASSIGNMENT,
                  lambda: host_probes.probe_host_assignment(layout, config.policy, config.host)),
        _ProbeRun("probe_security_env", checks.SECURITY_ENV,
                  lambda: environment_probes.probe_security_env(environ, Path(config.keystore), config.host)),
        _ProbeRun("probe_discovery", checks.DISCOVERY_EXPOSURE,
                  lambda: environment_probes.probe_discovery(environ, config.policy, config.host)),
        _ProbeRun("probe_enforcement_proof", checks.ENFORCEMENT_PROOF,
                  lambda: evidence_probes.probe_enforcement_proof(layout, now, config.proof_max_age_days,
                                                                  policy.middlewares)),
        _ProbeRun("probe_stored_results", checks.SERVICE_EXPOSURE,
                  lambda: evidence_probes.probe_stored_results(
                      Path(config.scan_results_dir) if config.scan_results_dir is not None
                      else layout.scans_dir,
                      now, config.scan_max_age_days, layout.network_check)),
    ]
    if graph is not None:
        runs.append(_ProbeRun("probe_graph", checks.GRAPH_CONFORMANCE,
                              lambda: graph_probes.probe_graph(graph, config.policy)))
        runs.append(_ProbeRun("probe_policy_drift", checks.POLICY_DRIFT,
                              lambda: drift_probes.probe_policy_drift(graph, config.policy)))
    return runs


def collect_findings(
    config: ReporterConfig, now: _dt.datetime, environ: Mapping[str, str], graph: GraphFacts | None
) -> list[Finding]:
    """Run every probe (the graph probe only when ``graph`` is given) and return all Findings."""
    findings: list[Finding] = []
    for probe in _probe_runs(config, now, environ, graph):
        findings.extend(_run(probe))
    return findings


def collect_offline_findings(
    keystore: Path,
    policy: WorkcellPolicy,
    now: _dt.datetime,
    environ: Mapping[str, str],
    uid: int,
    host: str,
) -> list[Finding]:
    """:func:`collect_findings` with default thresholds and no graph, for the CLI."""
    config = ReporterConfig(keystore=Path(keystore), policy=policy, expected_uid=uid, host=host)
    return collect_findings(config, now, environ, None)
