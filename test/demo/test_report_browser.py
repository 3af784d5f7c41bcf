"""The HTML report in a real headless browser: Debian's chromium takes a screenshot of the page.

The screenshot must not be blank, and the pictures must really be drawn: pixels of the score
line's colour and of the certificate bars' colours are found in it.  Where chromium is not
installed the test skips, except in CI (``CI=true``), whose set-up installs it.
"""

from __future__ import annotations

import datetime as dt
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

from ci_required import missing

from cobot_security.posture.catalog import Priority
from cobot_security.posture.evaluate import ControlResult, PostureReport
from cobot_security.posture.report import render_html
from cobot_security.status import Level

BROWSER_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars")


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        missing("chromium is not installed (Debian: apt-get install chromium; scripts/setup.sh installs it)")
    return found


def _pixels(png: bytes) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of RGB(A) bytes) of an 8-bit, non-interlaced PNG."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        data = png[pos + 8:pos + 8 + length]
        header = data if kind == b"IHDR" else header
        idat += data if kind == b"IDAT" else b""
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and interlace == 0 and colour in (2, 6)
    channels = 3 if colour == 2 else 4
    raw, stride, rows, previous = zlib.decompress(idat), width * channels, [], bytes(width * channels)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up, corner = previous[i], previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xFF
        previous = bytes(line)
        rows.append(previous)
    return width, channels, rows


def _colours(png: bytes) -> set[tuple[int, int, int]]:
    _width, channels, rows = _pixels(png)
    return {tuple(row[i:i + 3]) for row in rows for i in range(0, len(row), channels)}  # type: ignore[misc]


def test_report_pictures_render_in_chromium(tmp_path: Path) -> None:
    browser = _chromium()
    report = PostureReport(
        results=(ControlResult("per_node_identity", "Per-node identity", Priority.HIGH, Level.ERROR,
                               "certificate revoked", (), ("IEC 62443-3-3 SR 1.2",)),),
        score=52, level=Level.ERROR, evaluated_at=dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc))
    page = tmp_path / "posture.html"
    page.write_text(render_html(
        report, "Secure-workcell demo", ("t=0 healthy cell",),
        scores=[(float(t), 81 if t < 27 else 71 if t < 48 else 52) for t in range(60)],
        events=[(0.0, "healthy cell"), (27.0, "an enclave is revoked"), (48.0, "an artifact is tampered with")],
        certificate_days=[("/cell/arm_driver", 89), ("/cell/gripper", 24), ("/cell/mes_bridge", -1)]))
    shot = tmp_path / "shot.png"
    profile = tmp_path / "profile"
    done = subprocess.run([browser, *BROWSER_FLAGS, f"--user-data-dir={profile}", "--window-size=1000,900",
                           f"--screenshot={shot}", page.as_uri()], capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]

    colours = _colours(shot.read_bytes())
    assert len(colours) > 20, "the screenshot is blank"
    assert (0x09, 0x69, 0xDA) in colours, "the score line was not drawn"
    for bar in ((0x1A, 0x7F, 0x37), (0xBF, 0x87, 0x00), (0xCF, 0x22, 0x2E)):
        assert bar in colours, f"certificate bar colour {bar} was not drawn"
