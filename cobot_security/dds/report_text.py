"""The verify report as text: the per-participant table, the per-middleware matrix and the summary lines.

Presentation only (no decision is taken here); the CLI and the demo print the same tables.
"""

from __future__ import annotations

import io

from cobot_security import render
from cobot_security.dds.cross_vendor import CrossVendorResult
from cobot_security.dds.verify import VerifyReport, summarize
from cobot_security.policy.model import CYCLONEDDS, FASTDDS, ZENOH

MIDDLEWARE_NAMES = {CYCLONEDDS: "Cyclone DDS", FASTDDS: "Fast DDS", ZENOH: "Zenoh"}


def _fraction(tally: list[int]) -> str:
    return f"{tally[0]}/{tally[1]}" if tally[1] else "-"


def _summary_rows(report: VerifyReport) -> list[tuple[str, ...]]:
    return [
        (row.subject, row.joined, _fraction(row.flows), _fraction(row.writers_refused),
         _fraction(row.readers_refused), "PASS" if row.passed else "FAIL")
        for row in summarize(report)
    ]


def format_report(report: VerifyReport, *, details: bool = False, colour: bool = False) -> str:
    """The verify table (per participant, or every check with ``details``) and its summary lines."""
    buffer = io.StringIO()
    if details:
        render.table(("category", "subject", "topic", "expected", "observed", "result"),
                     [(c.category, c.subject, c.topic, c.expected, c.observed, "PASS" if c.passed else "FAIL")
                      for c in report.checks], out=buffer, colour=colour)
    else:
        render.table(("participant", "joined", "granted flows received", "ungranted writers refused",
                      "ungranted readers refused", "result"), _summary_rows(report), out=buffer, colour=colour)
    failures = report.failures()
    allowed = sum(1 for c in report.checks if c.category == "granted flow" and c.passed)
    refused = sum(1 for c in report.checks if c.category.startswith("denied") and c.passed)
    buffer.write(f"\nverify ({report.middleware}): {len(report.checks)} checks on domain {report.domain_id} in "
                 f"{report.duration_s:.1f}s: {allowed} granted flows delivered, {refused} ungranted endpoints "
                 f"refused, {len(failures)} failure(s)\n")
    for check in failures[:20]:
        buffer.write(f"  FAIL {check.category}: {check.subject} {check.topic}: expected {check.expected}, "
                     f"observed {check.observed}\n")
    return buffer.getvalue().rstrip("\n")


def _tally(report: VerifyReport, categories: tuple[str, ...]) -> str:
    checks = [c for c in report.checks if c.category in categories]
    return f"{sum(c.passed for c in checks)}/{len(checks)}" if checks else "-"


def format_matrix(reports: list[VerifyReport], cross: list[CrossVendorResult], colour: bool = False) -> str:
    """One column per middleware (what each proved), then the cross-vendor measurement."""
    buffer = io.StringIO()
    rows = [(label, *(_tally(r, categories) for r in reports)) for label, categories in (
        ("participants joined", ("participant",)), ("granted flows delivered", ("granted flow",)),
        ("ungranted writers refused", ("denied writer",)), ("ungranted readers refused", ("denied reader",)),
        ("intruders isolated", ("intruder",)), ("revoked identities refused", ("revoked",)),
        ("unexpected deliveries", ("unexpected",)))]
    rows.append(("seconds", *(f"{r.duration_s:.1f}" for r in reports)))
    rows.append(("result", *("PASS" if r.passed else "FAIL" for r in reports)))
    render.table(("check", *(MIDDLEWARE_NAMES[r.middleware] for r in reports)), rows, out=buffer, colour=colour)
    if cross:
        buffer.write("\ncross-vendor (one keystore, one domain; same-vendor rows are the run's controls)\n")
        render.table(("writer", "reader", "granted flows delivered", "enclave pairs silent"),
                     [(MIDDLEWARE_NAMES[c.writer_vendor], MIDDLEWARE_NAMES[c.reader_vendor], f"{c.delivered}/{c.flows}",
                       str(len(c.silent_pairs))) for c in cross], out=buffer, colour=colour)
        if not all(c.passed for c in cross):
            buffer.write("finding: a Fast DDS and a Cyclone DDS participant authenticate only when Cyclone "
                         "initiates the handshake (see docs/middlewares.md); not counted in the result\n")
    return buffer.getvalue().rstrip("\n")
