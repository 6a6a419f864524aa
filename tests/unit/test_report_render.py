"""The report's files: charts laid out from the figures, every label escaped, no script and no external URL in
the HTML, a CSV a spreadsheet cannot be tricked by, and JSON that reads back into the same report."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta

import pytest

from tocsin.bundled import TEMPLATES
from tocsin.policy.schema import Policy
from tocsin.reporting import render
from tocsin.reporting.charts import (
    BOTTOM,
    HEIGHT,
    TOP,
    bar_chart,
    count_text,
    duration_text,
    duration_unit,
    nice_ceiling,
)
from tocsin.reporting.model import IncidentFacts, PageFact, Report
from tocsin.reporting.summary import build_report

HOSTILE = '<script>alert("x")</script>'
START = datetime(2025, 6, 2, 10, 0, tzinfo=UTC)


def _report(policy: Policy) -> Report:
    incidents = [
        IncidentFacts(
            key=f"k-{n}",
            title=HOSTILE if n == 0 else '=HYPERLINK("http://evil.example","x")',
            service=HOSTILE if n == 0 else "checkout",
            severity="sev1",
            status="resolved",
            clock_start=START + timedelta(days=n),
            acknowledged_at=START + timedelta(days=n, seconds=mtta),
            resolved_at=START + timedelta(days=n, seconds=mttr),
            mtta_seconds=mtta,
            mttr_seconds=mttr,
            escalation_depth=1,
            pages=[PageFact(person=HOSTILE, at=START, level=1, timezone="UTC", out_of_hours=False)],
        )
        for n, (mtta, mttr) in enumerate([(90.0, 1800.0), (150.0, 4000.0)])
    ]
    return build_report(
        incidents,
        policy,
        since=START - timedelta(days=1),
        until=START + timedelta(days=3),
        generated_at=START + timedelta(days=3),
        limit=2,
        truncated=True,
        skipped=[f"incident-{HOSTILE}: ended without resolution (terminated)"],
    )


@pytest.mark.parametrize(
    ("value", "top"), [(0.0, 1.0), (0.4, 0.5), (1.0, 1.0), (3.0, 5.0), (7.0, 10.0), (120.0, 200.0)]
)
def test_the_axis_tops_at_one_two_or_five_times_a_power_of_ten(value: float, top: float) -> None:
    assert nice_ceiling(value) == pytest.approx(top)


def test_bars_are_as_high_as_their_share_of_the_axis() -> None:
    chart = bar_chart("c", "t", ["a", "b"], [("s0", [4.0, 1.0]), ("s1", [2.0, 0.0])], count_text)
    plot = HEIGHT - TOP - BOTTOM
    # The axis tops at 5: 4 is 80% of the plot's height, 2 is 40%, 1 is 20%, 0 is nothing.
    assert [b.height for b in chart.bars] == [pytest.approx(plot * f) for f in (0.8, 0.4, 0.2, 0.0)]
    assert all(b.y + b.height == pytest.approx(chart.baseline) for b in chart.bars)
    assert [t.text for t in chart.y_labels] == ["0", "5"]  # no "2.5" on a count axis
    assert [t.text for t in bar_chart("c", "t", ["a"], [("s", [2.0])], count_text).y_labels] == ["0", "1", "2"]
    assert [t.text for t in bar_chart("c", "t", ["a"], [("s", [7.0])], count_text).y_labels] == ["0", "5", "10"]
    assert [b.tip for b in chart.bars][:2] == ["a, s0: 4", "a, s1: 2"]


def test_at_most_twelve_category_labels_under_a_long_axis() -> None:
    days = [f"06-{d:02d}" for d in range(1, 31)]
    chart = bar_chart("d", "t", days, [("n", [1.0] * 30)], count_text)
    assert len(chart.bars) == 30 and len(chart.x_labels) == 10  # every third day


@pytest.mark.parametrize(
    ("longest", "unit"), [(0.0, "s"), (45.0, "s"), (120.0, "min"), (10799.0, "min"), (10800.0, "h")]
)
def test_a_duration_axis_counts_in_a_unit_that_suits_its_longest_bar(longest: float, unit: str) -> None:
    assert duration_unit(longest)[1] == unit


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "-"),
        (0.4, "0s"),
        (45.0, "45s"),
        (252.0, "4m 12s"),
        (3600.0, "1h 00m"),
        (7380.0, "2h 03m"),
        (273600.0, "3d 04h"),
    ],
)
def test_durations_read_as_people_write_them(seconds: float | None, text: str) -> None:
    assert duration_text(seconds) == text


def test_the_html_is_self_contained_escapes_every_label_and_has_the_charts(default_policy: Policy) -> None:
    page = render.html(_report(default_policy))
    assert page.count("<svg") == 4
    assert "<script" not in page.lower()
    assert "&lt;script&gt;" in page
    # Nothing that loads anything: no src/href attribute, no CSS url() or @import, no link, image or frame.
    loads = r"\b(?:src|srcset|href|action|formaction|data)\s*=|url\(|@import|<link|<img|<iframe|<object|<embed"
    assert not re.search(loads, page, re.IGNORECASE)
    # The alert's text with a URL in it is shown as text; the template itself names no address at all.
    assert "http" not in (TEMPLATES / render.HTML_TEMPLATE).read_text(encoding="utf-8")
    assert "MTTA median" in page and "2m 00s" in page  # the median of 90 s and 150 s
    assert "only the newest 2 were read" in page
    assert "ended without resolution" in page


def test_csv_has_one_row_per_incident_and_defuses_formulas(default_policy: Policy) -> None:
    rows = list(csv.DictReader(io.StringIO(render.csv_text(_report(default_policy)))))
    assert [r["key"] for r in rows] == ["k-0", "k-1"]
    assert rows[0]["service"] == HOSTILE
    assert rows[1]["title"].startswith("'=HYPERLINK")
    assert (rows[0]["mtta_seconds"], rows[0]["mttr_seconds"], rows[0]["pages"]) == ("90.0", "1800.0", "1")
    assert rows[0]["clock_start"] == "2025-06-02T10:00:00+00:00"


def test_json_reads_back_into_the_same_report(default_policy: Policy) -> None:
    report = _report(default_policy)
    assert Report.model_validate_json(render.json_text(report)) == report
