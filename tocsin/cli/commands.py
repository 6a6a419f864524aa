"""The incident commands: trigger, list, show, and the human actions (ack, escalate, mitigate, resolve...)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from pydantic import BaseModel
from temporalio.client import Client

from tocsin.cli.output import cell, emit_json, table
from tocsin.incidents import get_incident, list_incidents, open_incident, send_update
from tocsin.models import IncidentState, TimelineEntry
from tocsin.policy.loader import load_paging_policy
from tocsin.policy.triage import TriageError, TriggerRequest, plan_incident
from tocsin.settings import Settings
from tocsin.updates import (
    AcknowledgeRequest,
    AnnotateRequest,
    EscalateRequest,
    MitigateRequest,
    ResolveRequest,
    SetSeverityRequest,
    UpdateResult,
)

Connect = Callable[[], Awaitable[Client]]
"""Commands connect only once their own input is valid, so a typo is reported as a typo even offline."""


class CliError(Exception):
    """Printed as one line on stderr; the command exits non-zero."""


def parse_labels(pairs: list[str]) -> dict[str, str]:
    """`--label NAME=VALUE` options, as a dict; one line of error for a malformed one."""
    labels = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise CliError(f"--label {pair!r}: expected NAME=VALUE")
        labels[name] = value
    return labels


async def trigger(connect: Connect, settings: Settings, args: argparse.Namespace) -> None:
    policy, warnings = load_paging_policy(args.policy or settings.policy, settings.home)
    for warning in warnings:
        print(f"tocsin: {warning}", file=sys.stderr)
    request = TriggerRequest(
        service=args.service,
        severity=args.severity,
        title=args.title,
        labels=parse_labels(args.label),
        response_workflow=args.workflow,
        key=args.key,
        source="cli",
    )
    try:
        inp = plan_incident(policy, request, datetime.now(UTC))
    except TriageError as err:
        raise CliError(str(err)) from None
    created = await open_incident(await connect(), inp)
    if args.json:
        emit_json({"key": inp.key, "created": created, "severity": inp.severity, "title": inp.title})
    elif created:
        print(inp.key)
    else:
        print(f"{inp.key} (already open)")


async def list_cmd(connect: Connect, settings: Settings, args: argparse.Namespace) -> None:
    rows = await list_incidents(await connect(), args.status, args.severity, args.service, args.limit)
    if args.json:
        emit_json([dataclasses.asdict(r) for r in rows])
        return
    if not rows:
        print("no incidents match")
        return
    print(
        table(
            ["key", "sev", "status", "service", "level", "opened", "title"],
            [[r.key, r.severity, r.status, r.service, r.level, r.opened_at, r.title] for r in rows],
        )
    )
    if len(rows) == args.limit:
        print(f"(the first {args.limit}; narrow with --status/--severity/--service or raise --limit)")


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
    facts = [
        ("key", state.key),
        ("title", state.title),
        ("service", state.service),
        ("severity", state.severity),
        ("status", state.status),
        ("escalation level", state.escalation_level),
        ("next escalation", state.next_escalation_at),
        ("opened", state.opened_at),
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
    timeline = table(["at", "event", "by", "detail"], [[e.at, e.kind, e.by, e.text] for e in entries])
    return f"{head}\n\n{timeline}" + (f"\n({note})" if note else "")


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


async def show(connect: Connect, settings: Settings, args: argparse.Namespace) -> None:
    state = await get_incident(await connect(), args.key)
    if args.json:
        emit_json(state)
    else:
        print(_describe(state, args.page, 0 if args.all else args.page_size))


def _print_result(result: UpdateResult, args: argparse.Namespace) -> None:
    if args.json:
        emit_json(result)
    else:
        print(
            f"{result.key}: {result.message} (status {result.status}, {result.severity}, "
            f"level {result.escalation_level})"
        )


# command -> (update name, request model, the command's own options copied into the request)
HUMAN_ACTIONS: dict[str, tuple[str, type[BaseModel], tuple[str, ...]]] = {
    "ack": ("acknowledge", AcknowledgeRequest, ()),
    "escalate": ("escalate", EscalateRequest, ("reason",)),
    "mitigate": ("mitigate", MitigateRequest, ("summary",)),
    "resolve": ("resolve", ResolveRequest, ("summary",)),
    "annotate": ("annotate", AnnotateRequest, ("text",)),
    "severity": ("set_severity", SetSeverityRequest, ("severity", "reason")),
}


async def human_action(connect: Connect, settings: Settings, args: argparse.Namespace) -> None:
    update, model, options = HUMAN_ACTIONS[args.command]
    request = model(by=args.by, request_id=args.request_id, **{o: getattr(args, o) for o in options})
    _print_result(await send_update(await connect(), args.key, update, request), args)
