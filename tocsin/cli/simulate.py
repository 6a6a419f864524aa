"""`tocsin simulate --policy FILE --alerts FILE [--compare] [--json]`: who a policy would page, and when, for a
recorded alert stream, from the real workflows in simulated time (tocsin.simulate.engine runs them)."""

from __future__ import annotations

import asyncio
import sys
from itertools import zip_longest
from pathlib import Path
from typing import Annotated, Any

import typer

from tocsin.cli.common import CliError, JsonFlag
from tocsin.cli.output import emit_json, print_table
from tocsin.settings import load_settings
from tocsin.simulate.pages import IncidentPages, Page, Run, comparable_key, differences, format_offset
from tocsin.simulate.stream import Stream, StreamError, parse_stream

app = typer.Typer()

HEADERS = ["at", "level", "person", "channel"]


@app.command(
    "simulate",
    help='replay an alerts file (JSON lines: a generic alert plus "at") through the real workflows in simulated '
    "time under a policy, and print who is paged when; nothing is sent",
)
def simulate_command(
    policy: Annotated[Path, typer.Option("--policy", help="the candidate policy file")],
    alerts: Annotated[Path, typer.Option("--alerts", help="the alerts file (`tocsin incidents export` writes one)")],
    compare: Annotated[
        bool, typer.Option("--compare", help="also under the current policy (TOCSIN_POLICY or the default), and diff")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    # Here, not at the top: the engine brings the test server and every worker; `tocsin worker` and every other
    # command would carry them for nothing.
    from tocsin.simulate.engine import SimulationError, prepare, simulate

    settings = load_settings()
    stream = read_stream(alerts)
    # Both policies and every line are checked before anything starts: a bad input runs nothing.
    candidate, warnings = prepare(policy, stream, settings.home, str(alerts))
    current = None
    if compare:
        current, more = prepare(settings.policy, stream, settings.home, str(alerts))
        warnings += [w for w in more if w not in warnings]
    for warning in warnings:
        print(f"tocsin: {warning}", file=sys.stderr)

    async def run() -> tuple[Run, Run | None]:
        after = await simulate(policy, candidate, stream)
        before = await simulate(settings.policy, current, stream) if current is not None else None
        return after, before

    try:
        after, before = asyncio.run(run())
    except SimulationError as err:
        raise CliError(str(err)) from None
    if before is None:
        show_run(after, as_json)
    else:
        show_comparison(before, after, as_json)


def read_stream(path: Path) -> Stream:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise StreamError(f"{path}: cannot read: {err}") from None
    return parse_stream(text, str(path))


def _page_json(page: Page) -> dict[str, Any]:
    return {
        "offset": format_offset(page.offset),
        "seconds": int(page.offset.total_seconds()),
        "level": page.level,
        "person": page.person,
        "channel": page.channel,
        "address": page.address,
    }


def run_json(run: Run) -> dict[str, Any]:
    return {
        "policy": run.policy,
        "incidents": [
            {
                "key": i.key,
                "occurrence": i.occurrence,
                "title": i.title,
                "service": i.service,
                "severity": i.severity,
                "opened": format_offset(i.opened),
                "pages": [_page_json(p) for p in i.pages],
            }
            for i in run.incidents
        ],
    }


def _heading(incident: IncidentPages) -> str:
    again = f" #{incident.occurrence}" if incident.occurrence > 1 else ""
    return (
        f"{incident.key}{again}  [{incident.severity}] {incident.title} ({incident.service}), "
        f"opened {format_offset(incident.opened)}"
    )


def _cells(page: Page | None) -> list[object]:
    return [format_offset(page.offset), page.level, page.person, page.channel] if page else ["", "", "", ""]


def show_run(run: Run, as_json: bool) -> None:
    if as_json:
        emit_json(run_json(run))
        return
    print(f"policy {run.policy}: {len(run.incidents)} incidents")
    for incident in run.incidents:
        print(f"\n{_heading(incident)}")
        if incident.pages:
            print_table(HEADERS, [_cells(p) for p in incident.pages])
        else:
            print("no pages")


def show_comparison(current: Run, candidate: Run, as_json: bool) -> None:
    diff = differences(current, candidate)
    if as_json:
        emit_json({"current": run_json(current), "candidate": run_json(candidate), "differences": diff})
        return
    print(f"current policy {current.policy} | candidate policy {candidate.policy}")
    before = {comparable_key(i): i for i in current.incidents}
    after = {comparable_key(i): i for i in candidate.incidents}
    for key in [*before, *(k for k in after if k not in before)]:
        incident = after.get(key) or before[key]
        print(f"\n{_heading(incident)}")
        old = before[key].pages if key in before else []
        new = after[key].pages if key in after else []
        rows = [[*_cells(a), "|", *_cells(b)] for a, b in zip_longest(old, new)]
        headers = [f"current {HEADERS[0]}", *HEADERS[1:], "|", f"candidate {HEADERS[0]}", *HEADERS[1:]]
        if rows:
            print_table(headers, rows)
        else:
            print("no pages under either policy")
    print("\ndifferences:" if diff else "\ndifferences: none")
    for line in diff:
        print(f"  {line}")
