"""`tocsin report [--since 30d] [--out DIR]`: MTTA and MTTR per service and severity, pages and out-of-hours
pages per person, incidents per day and escalation depth over a window (tocsin.reporting computes; this
gathers, prints the summary tables and writes the files)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from tocsin.cli.common import CliError, Connect, JsonFlag, on_temporal
from tocsin.cli.output import print_table
from tocsin.durations import parse_duration
from tocsin.policy.overrides import load_paging_policy
from tocsin.reporting import render
from tocsin.reporting.charts import duration_text
from tocsin.reporting.facts import incident_facts
from tocsin.reporting.gather import gather
from tocsin.reporting.model import Report
from tocsin.reporting.summary import build_report
from tocsin.settings import Settings

app = typer.Typer()

RESPONSE_HEADERS = ["service", "severity", "incidents", "mtta median", "mtta p90", "mttr median", "mttr p90"]
PEOPLE_HEADERS = ["person", "timezone", "pages", "out of hours"]


@app.command("report", help="MTTA/MTTR, pages per person, incidents per day; --out writes HTML, CSV and JSON")
def report_command(
    since: Annotated[str, typer.Option("--since", help="how far back, e.g. 30d, 12h (default 30d)")] = "30d",
    out: Annotated[Path | None, typer.Option("--out", help="write report.html, report.csv, report.json here")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="read at most this many incidents, newest first")] = 1000,
    as_json: JsonFlag = False,
) -> None:
    # A ValueError is bad input: exit 2 before anything connects (tocsin.cli.main), as `incidents list` does.
    try:
        window = parse_duration(since)
    except ValueError as err:
        raise ValueError(f"--since: {err}") from None
    if window.total_seconds() <= 0:
        raise ValueError(f"--since {since!r}: give a positive duration, e.g. 30d")

    async def reporting(settings: Settings, connect: Connect) -> None:
        until = datetime.now(UTC)
        report = await make_report(connect, settings, until - window, until, limit)
        if out is not None:
            for path in write_files(report, out, settings.home):
                print(f"wrote {path}", file=sys.stderr if as_json else sys.stdout)
        if as_json:
            sys.stdout.write(render.json_text(report))
        else:
            print_summary(report)

    on_temporal(reporting)


async def make_report(connect: Connect, settings: Settings, since: datetime, until: datetime, limit: int) -> Report:
    # The current policy and overrides give each paged person's timezone and name (as `tocsin why` reads them).
    policy, warnings = load_paging_policy(settings.policy, settings.home)
    for warning in warnings:
        print(f"tocsin: {warning}", file=sys.stderr)
    found = await gather(await connect(), since, limit)
    return build_report(
        [incident_facts(state, policy) for state in found.states],
        policy,
        since=since,
        until=until,
        generated_at=datetime.now(UTC),
        limit=limit,
        truncated=found.truncated,
        skipped=found.skipped,
    )


def write_files(report: Report, out: Path, home: Path) -> list[Path]:
    # Rendered first: a template problem is not an --out problem.
    files = {
        "report.html": render.html(report, home),
        "report.csv": render.csv_text(report),
        "report.json": render.json_text(report),
    }
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (out / name).write_text(text, encoding="utf-8")
    except OSError as err:
        raise CliError(f"--out {out}: {err.strerror or err}") from None
    return [out / name for name in files]


def print_summary(report: Report) -> None:
    print(
        f"{report.overall.incidents} incidents from {report.since:%Y-%m-%d %H:%M}Z to {report.until:%Y-%m-%d %H:%M}Z"
        + (f" (the newest {report.limit} only)" if report.truncated else "")
    )
    for why in report.skipped:
        print(f"tocsin: not read: {why}", file=sys.stderr)
    rows = [*report.by_service_severity, report.overall] if report.by_service_severity else []
    if rows:
        print()
        print_table(
            RESPONSE_HEADERS,
            [
                [
                    r.service,
                    r.severity,
                    r.incidents,
                    duration_text(r.mtta.median_seconds),
                    duration_text(r.mtta.p90_seconds),
                    duration_text(r.mttr.median_seconds),
                    duration_text(r.mttr.p90_seconds),
                ]
                for r in rows
            ],
        )
    if report.people:
        print()
        print_table(PEOPLE_HEADERS, [[p.name, p.timezone, p.pages, p.out_of_hours_pages] for p in report.people])
    if report.incidents:
        depths = ", ".join(f"level {d.depth}: {d.incidents}" for d in report.escalation_depth)
        busiest = max(report.per_day, key=lambda d: d.incidents)
        print()
        print(f"escalation depth: {depths}")
        print(f"busiest day: {busiest.day} ({busiest.incidents} incidents)")
    print()
    print(f"out of hours: {report.definitions.out_of_hours}")
