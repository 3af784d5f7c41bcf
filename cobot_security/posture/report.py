"""A PostureReport as text for people and tools (table, json, markdown, junit, sarif) and an exit code.

Rendering makes no decisions beyond :func:`exit_code_for`, which applies ``--fail-on``: exit 1 when
any control of at least that priority fails (ERROR or STALE), else 0.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from typing import Any, cast

from cobot_security import __version__
from cobot_security.errors import InputError
from cobot_security.posture.catalog import Priority
from cobot_security.posture.charts import certificate_days_svg, score_timeline_svg
from cobot_security.posture.evaluate import ControlResult, PostureReport, is_failing
from cobot_security.status import Level

__all__ = ["FORMATS", "exit_code_for", "render_html", "render_report", "report_from_dict", "report_to_dict"]

#: Output formats accepted by :func:`render_report`.
FORMATS = ("table", "json", "markdown", "junit", "sarif", "html")

_SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def report_to_dict(report: PostureReport) -> dict[str, object]:
    """The JSON form of ``report`` as a fresh dict (what ``render_report(report, "json")`` writes)."""
    return {
        "name": "cobot_security/posture",
        "evaluated_at": report.evaluated_at.isoformat(),
        "score": report.score,
        "level": report.level.name,
        "controls": [
            {
                "control": r.control_id,
                "name": r.status_name,
                "title": r.title,
                "priority": r.priority.value,
                "level": r.level.name,
                "reason": r.reason,
                "evidence": list(r.evidence),
                "references": list(r.references),
            }
            for r in report.results
        ],
    }


def report_from_dict(data: dict[str, object]) -> PostureReport:
    """Rebuild a PostureReport from its JSON form (e.g. the supervisor's get_report answer).

    :raises InputError: when a field is missing or has the wrong type.
    """
    try:
        results = tuple(
            ControlResult(
                control_id=str(c["control"]), title=str(c["title"]), priority=Priority(c["priority"]),
                level=Level[str(c["level"])], reason=str(c["reason"]),
                evidence=tuple(str(e) for e in c["evidence"]), references=tuple(str(r) for r in c["references"]),
            )
            for c in cast("Iterable[Any]", data["controls"])  # a wrong shape raises TypeError below
        )
        return PostureReport(results=results, score=int(cast(Any, data["score"])),
                             level=Level[str(data["level"])],
                             evaluated_at=_dt.datetime.fromisoformat(str(data["evaluated_at"])))
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(None, "posture report", "the JSON form of a posture report", repr(exc)) from None


def _table(report: PostureReport) -> str:
    header = ("CONTROL", "PRIORITY", "LEVEL", "REASON")
    rows = [(r.control_id, r.priority.value, r.level.name, r.reason) for r in report.results]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(3)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths)) + "  " + row[3]
        for row in [header, *rows]
    ]
    lines.append("")
    lines.append(f"score {report.score}/100  level {report.level.name}  at {report.evaluated_at.isoformat()}")
    return "\n".join(lines) + "\n"


def _md_cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _markdown(report: PostureReport) -> str:
    lines = [
        "# Security posture",
        "",
        f"Score **{report.score}/100**, level **{report.level.name}**, evaluated at {report.evaluated_at.isoformat()}.",
        "",
        "| Control | Priority | Level | Reason | References |",
        "|---|---|---|---|---|",
    ]
    for r in report.results:
        cells = (r.control_id, r.priority.value, r.level.name, r.reason, "; ".join(r.references))
        lines.append("| " + " | ".join(_md_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def _junit(report: PostureReport) -> str:
    failures = sum(1 for r in report.results if is_failing(r.level))
    suite = ET.Element(
        "testsuite",
        {
            "name": "cobot_security.posture",
            "tests": str(len(report.results)),
            "failures": str(failures),
            "errors": "0",
            "skipped": "0",
            "timestamp": report.evaluated_at.isoformat(),
        },
    )
    ET.SubElement(suite, "properties")
    ET.SubElement(suite[0], "property", {"name": "score", "value": str(report.score)})
    for r in report.results:
        case = ET.SubElement(suite, "testcase", {"classname": f"cobot_security.posture.{r.priority.value}",
                                                 "name": r.control_id})
        if is_failing(r.level):
            failure = ET.SubElement(case, "failure", {"type": r.level.name, "message": r.reason})
            failure.text = "\n".join([r.reason, *r.references])
        elif r.level == Level.WARN:
            # WARN passes the gate but must stay visible in CI: report it as output, not a skip.
            out = ET.SubElement(case, "system-out")
            out.text = f"WARN: {r.reason}"
    suites = ET.Element("testsuites", {"name": "cobot_security posture", "tests": str(len(report.results)),
                                       "failures": str(failures)})
    suites.append(suite)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def _sarif_result(r: ControlResult) -> dict[str, object]:
    return {
        "ruleId": r.control_id,
        "level": "error" if is_failing(r.level) else "warning",
        "message": {"text": f"{r.title}: {r.level.name}: {r.reason}"},
        "properties": {"priority": r.priority.value, "status": r.level.name, "evidence": list(r.evidence)},
    }


def _sarif(report: PostureReport) -> str:
    rules = [
        {
            "id": r.control_id,
            "name": r.control_id,
            "shortDescription": {"text": r.title},
            "properties": {"priority": r.priority.value, "references": list(r.references)},
        }
        for r in report.results
    ]
    document = {
        "$schema": _SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": {"name": "cobot-security", "version": __version__, "rules": rules}},
                "invocations": [{"executionSuccessful": True, "endTimeUtc": report.evaluated_at.isoformat()}],
                "properties": {"score": report.score, "level": report.level.name},
                "results": [_sarif_result(r) for r in report.results if r.level != Level.OK],
            }
        ],
    }
    return json.dumps(document, indent=2) + "\n"


_HTML_COLOURS = {"OK": "#1a7f37", "WARN": "#9a6700", "ERROR": "#cf222e", "STALE": "#6e7781"}

_HTML_STYLE = (
    "body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem;color:#1f2328}"
    "table{border-collapse:collapse;width:100%}th,td{border:1px solid #d0d7de;padding:.4rem .6rem;"
    "text-align:left;vertical-align:top}th{background:#f6f8fa}.lvl{font-weight:700;color:#fff;"
    "border-radius:4px;padding:.1rem .4rem}.score{font-size:2rem;font-weight:700}small{color:#57606a}"
    "ul{margin:0;padding-left:1.1rem}"
)


def _html(report: PostureReport, title: str = "Cell security posture", timeline: tuple[str, ...] = (),
          pictures: str = "") -> str:
    """One self-contained page (inline CSS and SVG, no scripts, no external resources)."""
    esc = html.escape
    rows = []
    for r in report.results:
        colour = _HTML_COLOURS.get(r.level.name, "#6e7781")
        refs = "".join(f"<li>{esc(ref)}</li>" for ref in r.references)
        rows.append(
            f"<tr><td><b>{esc(r.title)}</b><br><small>{esc(r.control_id)}</small></td>"
            f"<td>{esc(r.priority.value)}</td>"
            f'<td><span class="lvl" style="background:{colour}">{esc(r.level.name)}</span></td>'
            f"<td>{esc(r.reason)}</td><td><ul>{refs}</ul></td></tr>"
        )
    overall = _HTML_COLOURS.get(report.level.name, "#6e7781")
    events = "".join(f"<li>{esc(line)}</li>" for line in timeline)
    timeline_html = f"<h2>Scenario</h2><ol>{events}</ol>" if timeline else ""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{esc(title)}</title><style>{_HTML_STYLE}</style></head><body>"
        f"<h1>{esc(title)}</h1>"
        f'<p><span class="score">{report.score}/100</span> &nbsp; overall '
        f'<span class="lvl" style="background:{overall}">{esc(report.level.name)}</span>'
        f"<br><small>evaluated {esc(report.evaluated_at.isoformat())} by cobot_security {esc(__version__)}; "
        "a control passes only on evidence: missing evidence fails it</small></p>"
        f"{pictures}<table><thead><tr><th>Control</th><th>Priority</th><th>Level</th><th>Reason</th>"
        f"<th>IEC 62443 references</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        f"{timeline_html}</body></html>\n"
    )


def render_html(report: PostureReport, title: str, timeline: tuple[str, ...] = (), *,
                scores: Sequence[tuple[float, int]] = (), events: Sequence[tuple[float, str]] = (),
                certificate_days: Sequence[tuple[str, int]] = (), renew_before_days: int = 30) -> str:
    """The HTML page with a custom title, an optional list of scenario events and pictures.

    ``scores`` (seconds, score) with ``events`` (seconds, title) draw the score over the
    scenario's timeline; ``certificate_days`` (enclave, days left) a bar per enclave.
    """
    esc = html.escape
    pictures = ""
    if scores or events:
        legend = "".join(f"<li>{esc(title)} <small>(t={when:.0f} s)</small></li>" for when, title in events)
        pictures += (f"<h2>Posture score over the scenario</h2>{score_timeline_svg(scores, events)}"
                     f"<ol class=\"legend\">{legend}</ol>")
    if certificate_days:
        pictures += (f"<h2>Certificate days left per enclave</h2>"
                     f"{certificate_days_svg(certificate_days, renew_before_days)}")
    return _html(report, title, timeline, pictures)


def render_report(report: PostureReport, fmt: str) -> str:
    """``report`` as text in ``fmt`` (one of :data:`FORMATS`).

    :raises InputError: for an unknown format.
    """
    if fmt == "table":
        return _table(report)
    if fmt == "json":
        return json.dumps(report_to_dict(report), indent=2) + "\n"
    if fmt == "markdown":
        return _markdown(report)
    if fmt == "junit":
        return _junit(report)
    if fmt == "sarif":
        return _sarif(report)
    if fmt == "html":
        return _html(report)
    raise InputError(None, "format", "one of " + ", ".join(FORMATS), repr(fmt))


def exit_code_for(report: PostureReport, fail_on: Priority | None) -> int:
    """1 when a control of priority ``fail_on`` or higher is ERROR/STALE, else 0; None never fails.

    An empty report fails whenever a threshold is given (fail closed).
    """
    if fail_on is None:
        return 0
    if not report.results:
        return 1
    failing = any(is_failing(r.level) and r.priority.at_least(fail_on) for r in report.results)
    return 1 if failing else 0
