"""report.html, report.csv and report.json from a Report.

The HTML renders templates/report.html.j2 in Jinja's immutable sandbox with autoescape on (as every template
Tocsin renders for people, tocsin.sandboxed_templates; `$TOCSIN_HOME/templates/report.html.j2` overrides it).
It is one self-contained file: styles inline, charts inline SVG, no script, no external URL, so it can be
mailed or archived and opened offline. The CSV has one row per incident; a cell a spreadsheet would read as a
formula is prefixed with an apostrophe (titles come from alerts, which anyone who can post one writes).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from tocsin.reporting.charts import Chart, bar_chart, count_text, duration_text, duration_unit
from tocsin.reporting.model import Report
from tocsin.reporting.summary import response_row
from tocsin.sandboxed_templates import builtin_dir, sandboxed_environment

HTML_TEMPLATE = "report.html.j2"
CSV_COLUMNS = [
    "key",
    "service",
    "severity",
    "status",
    "title",
    "clock_start",
    "acknowledged_at",
    "resolved_at",
    "mtta_seconds",
    "mttr_seconds",
    "escalation_depth",
    "pages",
    "out_of_hours_pages",
]
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def charts(report: Report) -> list[Chart]:
    """Incidents per day, median MTTA and MTTR per service, pages per person, escalation depth."""
    days = report.per_day
    services = sorted({i.service for i in report.incidents})
    rows = [response_row(s, "*", [i for i in report.incidents if i.service == s]) for s in services]
    mtta = [r.mtta.median_seconds or 0.0 for r in rows]
    mttr = [r.mttr.median_seconds or 0.0 for r in rows]
    size, unit = duration_unit(max([*mtta, *mttr], default=0.0))
    return [
        bar_chart(
            "per-day",
            "Incidents per day (UTC)",
            [d.day.strftime("%m-%d") for d in days],
            [("incidents", [float(d.incidents) for d in days])],
            count_text,
        ),
        bar_chart(
            "response",
            "Median MTTA and MTTR per service",
            services,
            [("MTTA median", [v / size for v in mtta]), ("MTTR median", [v / size for v in mttr])],
            lambda v: duration_text(v * size),
            lambda v: f"{v:g} {unit}",
        ),
        bar_chart(
            "people",
            "Pages per person",
            [p.name for p in report.people],
            [
                ("in hours", [float(p.pages - p.out_of_hours_pages) for p in report.people]),
                ("out of hours", [float(p.out_of_hours_pages) for p in report.people]),
            ],
            count_text,
        ),
        bar_chart(
            "depth",
            "Incidents by escalation depth",
            [f"level {d.depth}" for d in report.escalation_depth],
            [("incidents", [float(d.incidents) for d in report.escalation_depth])],
            count_text,
        ),
    ]


def html(report: Report, home: Path | None = None) -> str:
    env = sandboxed_environment(home, builtin_dir([HTML_TEMPLATE]), autoescape=True)
    env.filters["duration"] = duration_text
    template = env.get_template(HTML_TEMPLATE)
    return template.render(report=report, charts=charts(report))


def _cell(value: object) -> str:
    text = "" if value is None else value.isoformat() if hasattr(value, "isoformat") else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_text(report: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for i in report.incidents:
        late = sum(p.out_of_hours for p in i.pages)
        values: list[object] = [
            i.key,
            i.service,
            i.severity,
            i.status,
            i.title,
            i.clock_start,
            i.acknowledged_at,
            i.resolved_at,
            i.mtta_seconds,
            i.mttr_seconds,
            i.escalation_depth,
            len(i.pages),
            late,
        ]
        writer.writerow([_cell(v) for v in values])
    return out.getvalue()


def json_text(report: Report) -> str:
    return report.model_dump_json(indent=2) + "\n"
