"""`tocsin incidents list | show | export`: incidents from Temporal's visibility, one incident's state and
timeline, and recent incidents' alerts as a file `tocsin simulate` replays."""

from __future__ import annotations

import dataclasses
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Literal

import typer
from temporalio.client import Client, WorkflowExecutionStatus

from tocsin.cli.common import Connect, JsonFlag, on_temporal
from tocsin.cli.output import cell, emit_json, print_table, render, table
from tocsin.durations import format_elapsed, parse_duration
from tocsin.incident.client import get_incident, list_incidents
from tocsin.incident.contracts import IncidentState, TimelineEntry
from tocsin.settings import Settings
from tocsin.simulate.export import rfc3339, stream_text

app = typer.Typer(help="list or show incidents")

Status = Literal["triggered", "acknowledged", "mitigated", "resolved"]


@app.command("list", help="incidents, newest first (a visibility query)")
def list_command(
    status: Annotated[Status | None, typer.Option("--status")] = None,
    severity: Annotated[str | None, typer.Option("--severity")] = None,
    service: Annotated[str | None, typer.Option("--service")] = None,
    limit: Annotated[int, typer.Option("--limit")] = 100,
    as_json: JsonFlag = False,
) -> None:
    async def listing(settings: Settings, connect: Connect) -> None:
        rows = await list_incidents(await connect(), status, severity, service, limit)
        if as_json:
            emit_json([dataclasses.asdict(r) for r in rows])
            return
        if not rows:
            print("no incidents match")
            return
        print_table(
            ["key", "sev", "status", "service", "level", "opened", "title"],
            [[r.key, r.severity, r.status, r.service, r.level, r.opened_at, r.title] for r in rows],
        )
        if len(rows) == limit:
            print(f"(the first {limit}; narrow with --status/--severity/--service or raise --limit)")

    on_temporal(listing)


@app.command("show", help="one incident's state and timeline")
def show_command(
    key: Annotated[str, typer.Argument(metavar="KEY")],
    as_json: JsonFlag = False,
    page: Annotated[
        int, typer.Option("--page", help="timeline page, newest first (default 1: the latest)", show_default=False)
    ] = 1,
    page_size: Annotated[
        int, typer.Option("--page-size", help="timeline entries per page (default 50)", show_default=False)
    ] = 50,
    whole: Annotated[bool, typer.Option("--all", help="the whole timeline on one page")] = False,
) -> None:
    async def showing(settings: Settings, connect: Connect) -> None:
        state = await get_incident(await connect(), key)
        if as_json:
            emit_json(state)
        else:
            print(_describe(state, page, 0 if whole else page_size))

    on_temporal(showing)


@app.command("export", help="recent incidents' alerts as JSON lines with their times, for `tocsin simulate --alerts`")
def export_command(
    since: Annotated[str, typer.Option("--since", help="incidents opened this far back, e.g. 7d, 12h")] = "7d",
    out: Annotated[Path | None, typer.Option("--out", help="write here (default: standard output)")] = None,
) -> None:
    window = parse_duration(since)  # a ValueError: a typo is exit 2 before anything connects

    async def exporting(settings: Settings, connect: Connect) -> None:
        states = await incidents_since(await connect(), datetime.now(UTC) - window)
        text = stream_text(states)
        if out is None:
            sys.stdout.write(text)
        else:
            out.write_text(text, encoding="utf-8")
            print(f"{text.count(chr(10))} alerts of {len(states)} incidents written to {out}", file=sys.stderr)

    on_temporal(exporting)


async def incidents_since(client: Client, since: datetime) -> list[IncidentState]:
    """Each incident opened since then, from its own state. Visibility lists every run: a key that resolved
    and fired again is two incidents (two runs, both exported), while a run that continued as new is the same
    incident as its successor, which carries its state (only the last is read)."""
    query = f"WorkflowType = 'IncidentWorkflow' AND StartTime >= '{rfc3339(since)}'"
    states = []
    async for run in client.list_workflows(query):
        handle = client.get_workflow_handle(run.id, run_id=run.run_id)
        if run.status == WorkflowExecutionStatus.RUNNING:
            states.append(await handle.query("status", result_type=IncidentState))
        elif run.status == WorkflowExecutionStatus.COMPLETED:
            # The recorded result: no worker needed for a closed incident.
            states.append(IncidentState.model_validate(await handle.result(follow_runs=False)))
        elif run.status != WorkflowExecutionStatus.CONTINUED_AS_NEW:
            # Terminated or timed out: its alerts are in no final state to read; the rest still export.
            status = run.status.name.lower() if run.status else "unknown"
            print(f"tocsin: {run.id.removeprefix('incident-')} left out: it ended {status}", file=sys.stderr)
    return states


def _timeline_page(state: IncidentState, page: int, size: int) -> tuple[list[TimelineEntry], str]:
    """Page `page` of the timeline, newest first (1 = the latest `size` entries, in time order), and a note
    saying what is not shown: a storm leaves hundreds of entries, and a person reads the latest first."""
    total = len(state.timeline)
    pages = max((total + size - 1) // size, 1)
    page = min(max(page, 1), pages)
    end = total - (page - 1) * size
    shown = state.timeline[max(end - size, 0) : end]
    notes = []
    if pages > 1:
        notes.append(f"timeline page {page} of {pages} ({total} entries; --page N for older ones, --all for every one)")
    if state.timeline_folded:
        notes.append(f"{state.timeline_folded} older entries were folded away to keep the incident bounded")
    return shown, "\n".join(notes)


def _describe(state: IncidentState, page: int = 1, size: int = 0) -> str:
    """The incident as plain text (facts, then the timeline table): `size` 0 shows the whole timeline."""
    facts = [
        ("key", state.key),
        ("title", state.title),
        ("service", state.service),
        ("severity", state.severity),
        ("status", state.status),
        ("escalation level", state.escalation_level),
        ("next escalation", state.next_escalation_at),
        *_held(state),
        *_clock(state),
        (
            "acknowledged",
            f"{state.acknowledged_at:%Y-%m-%d %H:%M:%SZ} by {state.acknowledged_by}" if state.acknowledged_at else None,
        ),
        (
            "resolved",
            f"{state.resolved_at:%Y-%m-%d %H:%M:%SZ} by {state.resolved_by}" if state.resolved_at else None,
        ),
        ("post-mortem", state.postmortem_workflow_id),
        ("alerts", _alerts(state) if state.alert_count else None),
        ("storm", _storm(state)),
    ]
    head = "\n".join(f"{name:>17}: {cell(value)}" for name, value in facts)
    entries, note = _timeline_page(state, page, size) if size else (state.timeline, "")
    timeline = render(table(["at", "event", "by", "detail"], [[e.at, e.kind, e.by, e.text] for e in entries]))
    return f"{head}\n\n{timeline}" + (f"\n({note})" if note else "")


def _held(state: IncidentState) -> list[tuple[str, object]]:
    """While a maintenance window holds the pages, say which, so "next escalation: -" is not a mystery."""
    held = state.maintenance.held
    return [("paging held", held.describe())] if held is not None and state.status != "resolved" else []


def _clock(state: IncidentState) -> list[tuple[str, object]]:
    """The opening, and the first alert and first page around it when they say something the opening does not:
    response times are measured from the first alert, which a busy worker can open the incident long after."""
    lines: list[tuple[str, object]] = []
    waited = state.opened_at - state.clock_start
    if waited >= timedelta(seconds=1):
        lines.append(("first alert", f"{cell(state.clock_start)} ({format_elapsed(waited)} before it opened)"))
    lines.append(("opened", state.opened_at))
    if state.first_paged_at is not None:
        paged = format_elapsed(state.first_paged_at - state.clock_start)
        lines.append(("first page", f"{cell(state.first_paged_at)} ({paged} after the first alert)"))
    return lines


def _alerts(state: IncidentState) -> str:
    counts = ", ".join(f"{n} {status}" for status, n in sorted(state.alert_events.items()))
    untracked = f"; {state.alerts_untracked} beyond the tracked cap" if state.alerts_untracked else ""
    return f"{state.alert_count} ({counts}{untracked})" if counts else str(state.alert_count)


def _storm(state: IncidentState) -> str | None:
    if state.storm is not None:
        keys = ", ".join(m.key for m in state.storm.members[:10])
        more = f" and {state.storm.count - 10} more" if state.storm.count > 10 else ""
        return f"{state.storm.count} incidents joined: {keys}{more} (--json lists them all)"
    if state.storm_key:
        held = "paging held" if state.paging_held else "paging resumed"
        return f"member of {state.storm_key} ({held})"
    return None
