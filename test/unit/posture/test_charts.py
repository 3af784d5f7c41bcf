"""The HTML report's pictures: inline SVG drawn from the data, with no script or external resource."""

from __future__ import annotations

import datetime as dt

from lxml import etree, html

from cobot_security.posture.catalog import Priority
from cobot_security.posture.charts import SCORE_COLOUR, certificate_days_svg, score_timeline_svg
from cobot_security.posture.evaluate import ControlResult, PostureReport
from cobot_security.posture.report import render_html
from cobot_security.status import Level

SVG = "{http://www.w3.org/2000/svg}"


def test_score_timeline_draws_the_samples_and_numbers_the_events() -> None:
    svg = etree.fromstring(score_timeline_svg([(0.0, 80), (10.0, 70), (20.0, 50)],
                                              [(0.0, "healthy cell"), (12.0, "an enclave is revoked")]))
    line = svg.find(f"{SVG}polyline")
    assert line is not None and line.get("stroke") == SCORE_COLOUR
    points = [tuple(map(float, p.split(","))) for p in line.get("points", "").split()]
    assert len(points) == 3
    assert points[0][1] < points[1][1] < points[2][1]  # lower score, lower on the page (larger y)
    titles = [t.text for t in svg.iter(f"{SVG}title")]
    assert titles == ["healthy cell", "an enclave is revoked"]
    assert [t.text for t in svg.iter(f"{SVG}text") if t.text in ("1", "2")] == ["1", "2"]


def test_certificate_bars_are_coloured_by_renewal_window_and_expiry() -> None:
    svg = etree.fromstring(certificate_days_svg([("/cell/a", 80), ("/cell/b", 12), ("/cell/c", -3)], 30))
    bars = [r.get("fill") for r in svg.iter(f"{SVG}rect")][1:]  # the first rect is the background
    assert bars == ["#1a7f37", "#bf8700", "#cf222e"]
    labels = [t.text for t in svg.iter(f"{SVG}text")]
    assert "/cell/b" in labels and "12 d" in labels and "renewal window: 30 d" in labels


def test_report_page_has_the_pictures_first_and_stays_self_contained() -> None:
    report = PostureReport(results=(ControlResult("per_node_identity", "Per-node identity", Priority.HIGH, Level.OK,
                                                  "all evidence OK", (), ("IEC 62443-3-3 SR 1.2",)),),
                           score=100, level=Level.OK, evaluated_at=dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc))
    page = html.fromstring(render_html(report, "demo", ("t=0 healthy",), scores=[(0.0, 100), (5.0, 90)],
                                       events=[(0.0, "healthy cell")], certificate_days=[("/cell/a", 40)]))
    assert [h.text for h in page.iter("h2")][:2] == ["Posture score over the scenario",
                                                     "Certificate days left per enclave"]
    assert len(page.xpath("//svg")) == 2
    assert not page.xpath("//script | //link | //img | //*[@src] | //*[@href]")
