"""The report's HTML in a real browser (tests/support/browser.py): the screenshot is not blank (the charts' bar
colours are painted) and the rendered DOM carries the MTTA figures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support.browser import dump_dom, png_pixels, screenshot
from tocsin.policy.schema import Policy
from tocsin.reporting import render
from tocsin.reporting.charts import duration_text
from tocsin.reporting.model import IncidentFacts, PageFact
from tocsin.reporting.summary import build_report

WINDOW = (1000, 2400)  # tall enough for the headline figures and all four charts
# The charts' two series colours (templates/report.html.j2: svg .s0 and .s1).
BAR_COLOURS = {(0x2F, 0x6F, 0xDF), (0xE8, 0x77, 0x2E)}


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
