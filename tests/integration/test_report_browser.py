"""The report's HTML in a real browser: Debian's Chromium, headless, offline, renders the page; the screenshot
is not blank (the charts' bar colours are painted) and the rendered DOM carries the MTTA figures.

Chromium is a system dependency (`make system-deps` installs Debian's `chromium`): a machine without it fails
here with that instruction, never skips, so CI cannot pass without having looked at the page.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tocsin.policy.schema import Policy
from tocsin.reporting import render
from tocsin.reporting.charts import duration_text
from tocsin.reporting.model import IncidentFacts, PageFact
from tocsin.reporting.summary import build_report

BROWSER_TIMEOUT = 60.0
WINDOW = (1000, 2400)  # tall enough for the headline figures and all four charts
# The charts' two series colours (templates/report.html.j2: svg .s0 and .s1).
BAR_COLOURS = {(0x2F, 0x6F, 0xDF), (0xE8, 0x77, 0x2E)}


def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        pytest.fail("chromium is missing: run `make system-deps` (installs Debian's chromium package) as root")
    return found


def _browse(
    page: Path, profile: Path, *args: str, window: tuple[int, int] = WINDOW
) -> subprocess.CompletedProcess[bytes]:
    # A throwaway profile per run (tests run in parallel); no sandbox as root in a container; a file URL only.
    command = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        "--disable-background-networking",
        f"--user-data-dir={profile}",
        f"--window-size={window[0]},{window[1]}",
        *args,
        page.resolve().as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, timeout=BROWSER_TIMEOUT)
    assert done.returncode == 0, f"chromium exited {done.returncode}: {done.stderr.decode(errors='replace')[-2000:]}"
    return done


def screenshot(page: Path, png: Path, window: tuple[int, int] = WINDOW) -> None:
    _browse(page, png.parent / "chromium-profile-shot", f"--screenshot={png}", window=window)
    assert png.is_file() and png.stat().st_size > 0, "chromium wrote no screenshot"


def dump_dom(page: Path) -> str:
    return _browse(page, page.parent / "chromium-profile-dom", "--dump-dom").stdout.decode()


def png_pixels(png: bytes) -> tuple[int, int, list[tuple[int, ...]]]:
    """Width, height and every pixel of an 8-bit RGB or RGBA, non-interlaced PNG (what Chromium writes),
    decoded with the stdlib: the IDAT chunks inflated, each scanline's filter undone."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", b""
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, data = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = data
        elif kind == b"IDAT":
            idat += data
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and interlace == 0, f"unexpected PNG format {depth=} {colour=}"
    channels = 4 if colour == 6 else 3
    raw = zlib.decompress(idat)
    stride = width * channels
    previous = bytearray(stride)
    pixels: list[tuple[int, ...]] = []
    for row in range(height):
        start = row * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                predictor = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                line[i] = (line[i] + predictor) & 0xFF
        pixels.extend(tuple(line[i : i + 3]) for i in range(0, stride, channels))
        previous = line
    return width, height, pixels


def assert_painted(png: Path, window: tuple[int, int]) -> None:
    """The size asked for, and not blank: many colours (text is anti-aliased) and the bars' colours."""
    width, height, pixels = png_pixels(png.read_bytes())
    assert (width, height) == window
    colours = set(pixels)
    assert len(colours) > 50, f"the screenshot is blank or nearly so: {len(colours)} distinct colours"
    assert colours >= BAR_COLOURS, f"no chart bars painted: bar colours {BAR_COLOURS - colours} are missing"


def view_in_browser(page: Path, figures: list[str]) -> None:
    """Render `page` in Chromium: a painted screenshot beside it, and each of `figures` in the page's text."""
    png = page.with_suffix(".png")
    screenshot(page, png)
    assert_painted(png, WINDOW)
    dom = dump_dom(page)
    assert dom.count("<svg") >= 2, "fewer than two SVG charts in the rendered page"
    for figure in figures:
        assert figure in dom, f"{figure!r} is not in the rendered page"


def test_a_report_renders_in_chromium_with_its_charts_and_figures(tmp_path: Path, default_policy: Policy) -> None:
    start = datetime(2025, 6, 2, 10, 0, tzinfo=UTC)
    incidents = [
        IncidentFacts(
            key=f"checkout-{n}",
            title="Checkout down",
            service=service,
            severity="sev1",
            status="resolved",
            clock_start=start + timedelta(days=n),
            acknowledged_at=start + timedelta(days=n, seconds=mtta),
            resolved_at=start + timedelta(days=n, seconds=mttr),
            mtta_seconds=mtta,
            mttr_seconds=mttr,
            escalation_depth=1 + n % 2,
            pages=[PageFact(person="alice", at=start, level=1, timezone="Europe/Berlin", out_of_hours=n == 1)],
        )
        for n, (service, mtta, mttr) in enumerate([("checkout", 60.0, 900.0), ("api", 300.0, 2400.0)])
    ]
    report = build_report(
        incidents,
        default_policy,
        since=start - timedelta(days=2),
        until=start + timedelta(days=3),
        generated_at=start + timedelta(days=3),
        limit=10,
        truncated=False,
    )
    page = tmp_path / "report.html"
    page.write_text(render.html(report), encoding="utf-8")
    # Median of 60 s and 300 s is 3m 00s; p90 (nearest rank, 2nd of 2) is 5m 00s.
    assert duration_text(report.overall.mtta.median_seconds) == "3m 00s"
    view_in_browser(page, ["3m 00s", "5m 00s", "Alice Martin"])


def test_the_png_reader_sees_a_blank_page_as_blank(tmp_path: Path) -> None:
    """The check has teeth: an empty page's screenshot fails it."""
    page = tmp_path / "blank.html"
    page.write_text("<!DOCTYPE html><html><body></body></html>", encoding="utf-8")
    png = tmp_path / "blank.png"
    screenshot(page, png, window=(400, 300))
    _, _, pixels = png_pixels(png.read_bytes())
    assert set(pixels) == {(255, 255, 255)}
    with pytest.raises(AssertionError, match="blank"):
        assert_painted(png, (400, 300))
