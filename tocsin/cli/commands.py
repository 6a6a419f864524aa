"""The incident commands: trigger, list, show, and the human actions (ack, escalate, mitigate, resolve...)."""

from __future__ import annotations

import argparse
import dataclasses
from datetime import UTC, datetime

from temporalio.client import Client

from tocsin.cli.output import cell, emit_json, table
from tocsin.incidents import get_incident, list_incidents, open_incident, send_update
from tocsin.models import IncidentState
from tocsin.policy.loader import load_policy
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


class CliError(Exception):
    """Printed as one line on stderr; the command exits non-zero."""


def _labels(pairs: list[str]) -> dict[str, str]:
    labels = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise CliError(f"--label {pair!r}: expected NAME=VALUE")
        labels[name] = value
    return labels


async def trigger(client: Client, settings: Settings, args: argparse.Namespace) -> None:
    policy = load_policy(args.policy or settings.policy)
    request = TriggerRequest(
        service=args.service,
        severity=args.severity,
        title=args.title,
        labels=_labels(args.label),
        response_workflow=args.workflow,
        key=args.key,
        source="cli",
    )
    try:
        inp = plan_incident(policy, request, datetime.now(UTC))
    except TriageError as err:
        raise CliError(str(err)) from None
    created = await open_incident(client, inp)
    if args.json:
        emit_json({"key": inp.key, "created": created, "severity": inp.severity, "title": inp.title})
    elif created:
        print(inp.key)
    else:
        print(f"{inp.key} (already open)")


async def list_cmd(client: Client, settings: Settings, args: argparse.Namespace) -> None:
    rows = await list_incidents(client, args.status, args.severity, args.service, args.limit)
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


def _describe(state: IncidentState) -> str:
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
    ]
    head = "\n".join(f"{name:>17}: {cell(value)}" for name, value in facts)
    timeline = table(["at", "event", "by", "detail"], [[e.at, e.kind, e.by, e.text] for e in state.timeline])
    return f"{head}\n\n{timeline}"


async def show(client: Client, settings: Settings, args: argparse.Namespace) -> None:
    state = await get_incident(client, args.key)
    if args.json:
        emit_json(state)
    else:
        print(_describe(state))


def _print_result(result: UpdateResult, args: argparse.Namespace) -> None:
    if args.json:
        emit_json(result)
    else:
        print(
            f"{result.key}: {result.message} (status {result.status}, {result.severity}, "
            f"level {result.escalation_level})"
        )


async def ack(client: Client, settings: Settings, args: argparse.Namespace) -> None:
    request = AcknowledgeRequest(by=args.by, request_id=args.request_id)
    _print_result(await send_update(client, args.key, "acknowledge", request), args)


async def escalate(client: Client, settings: Settings, args: argparse.Namespace) -> None:
    request = EscalateRequest(by=args.by, reason=args.reason, request_id=args.request_id)
    _print_result(await send_update(client, args.key, "escalate", request), args)


async def mitigate(client: Client, settings: Settings, args: argparse.Namespace) -> None:
    request = MitigateRequest(by=args.by, summary=args.summary, request_id=args.request_id)
    _print_result(await send_update(client, args.key, "mitigate", request), args)


async def resolve(client: Client, settings: Settings, args: argparse.Namespace) -> None:
    request = ResolveRequest(by=args.by, summary=args.summary, request_id=args.request_id)
    _print_result(await send_update(client, args.key, "resolve", request), args)


async def annotate(client: Client, settings: Settings, args: argparse.Namespace) -> None:
    request = AnnotateRequest(by=args.by, text=args.text, request_id=args.request_id)
    _print_result(await send_update(client, args.key, "annotate", request), args)


async def severity(client: Client, settings: Settings, args: argparse.Namespace) -> None:
    request = SetSeverityRequest(by=args.by, severity=args.severity, reason=args.reason, request_id=args.request_id)
    _print_result(await send_update(client, args.key, "set_severity", request), args)
