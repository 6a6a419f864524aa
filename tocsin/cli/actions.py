"""`tocsin trigger` opens an incident; `ack`, `escalate`, `mitigate`, `resolve`, `annotate` and `severity` are a
person's actions on one, each a Temporal update of the incident's workflow."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Annotated

import typer
from pydantic import BaseModel, ValidationError

from tocsin.cli.common import CliError, Connect, JsonFlag, on_temporal, parse_labels
from tocsin.cli.output import emit_json
from tocsin.durations import parse_duration
from tocsin.incident.client import open_incident, send_update
from tocsin.incident.updates import (
    AcknowledgeRequest,
    AnnotateRequest,
    EscalateRequest,
    MitigateRequest,
    ResolveRequest,
    SetSeverityRequest,
    SnoozeRequest,
    TakeRequest,
)
from tocsin.policy.overrides import load_paging_policy
from tocsin.policy.triage import TriageError, TriggerRequest, plan_incident
from tocsin.settings import Settings

app = typer.Typer()


@app.command("trigger", help="open an incident by hand; prints its key")
def trigger(
    service: Annotated[str, typer.Option("--service")],
    severity: Annotated[
        str | None, typer.Option("--severity", help="sev1..sev4 (default: from the response workflow or the policy)")
    ] = None,
    title: Annotated[str | None, typer.Option("--title")] = None,
    label: Annotated[
        list[str] | None, typer.Option("--label", metavar="NAME=VALUE", help="alert label (repeatable)")
    ] = None,
    workflow: Annotated[
        str | None, typer.Option("--workflow", help="response workflow from the policy (default: matched by labels)")
    ] = None,
    key: Annotated[
        str | None, typer.Option("--key", help="incident key (default: generated from the service and time)")
    ] = None,
    policy: Annotated[
        str | None, typer.Option("--policy", help="policy file (default: TOCSIN_POLICY or policies/default.yaml)")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    async def opening(settings: Settings, connect: Connect) -> None:
        paging, warnings = load_paging_policy(policy or settings.policy, settings.home)
        for warning in warnings:
            print(f"tocsin: {warning}", file=sys.stderr)
        request = TriggerRequest(
            service=service,
            severity=severity,
            title=title,
            labels=parse_labels(label),
            response_workflow=workflow,
            key=key,
            source="cli",
        )
        try:
            inp = plan_incident(paging, request, datetime.now(UTC))
        except TriageError as err:
            raise CliError(str(err)) from None
        created = await open_incident(await connect(), inp)
        if as_json:
            emit_json({"key": inp.key, "created": created, "severity": inp.severity, "title": inp.title})
        elif created:
            print(inp.key)
        else:
            print(f"{inp.key} (already open)")

    on_temporal(opening)


# The options every human action takes, with the help they have always had.
Key = Annotated[str, typer.Argument(metavar="KEY", help="incident key (as printed by `tocsin trigger`)")]
By = Annotated[str, typer.Option("--by", help="who is acting")]
RequestId = Annotated[
    str | None, typer.Option("--request-id", help="idempotency key: repeating the call with it changes nothing")
]
JsonResult = Annotated[bool, typer.Option("--json", help="machine-readable output")]
Reason = Annotated[str, typer.Option("--reason")]
Summary = Annotated[str, typer.Option("--summary")]


def _act(key: str, update: str, request: BaseModel, as_json: bool) -> None:
    """Send `update` with `request` (already valid: a bad value stops before any connection) and print the result."""

    async def acting(settings: Settings, connect: Connect) -> None:
        result = await send_update(await connect(), key, update, request)
        if as_json:
            emit_json(result)
        else:
            print(
                f"{result.key}: {result.message} (status {result.status}, {result.severity}, "
                f"level {result.escalation_level})"
            )

    on_temporal(acting)


@app.command("ack", help="acknowledge: stops paging")
def ack(key: Key, by: By, request_id: RequestId = None, as_json: JsonResult = False) -> None:
    _act(key, "acknowledge", AcknowledgeRequest(by=by, request_id=request_id), as_json)


@app.command("escalate", help="page the next escalation level now")
def escalate(key: Key, by: By, request_id: RequestId = None, as_json: JsonResult = False, reason: Reason = "") -> None:
    _act(key, "escalate", EscalateRequest(by=by, request_id=request_id, reason=reason), as_json)


@app.command("mitigate", help="mark mitigated (impact stopped, not yet resolved)")
def mitigate(
    key: Key, by: By, request_id: RequestId = None, as_json: JsonResult = False, summary: Summary = ""
) -> None:
    _act(key, "mitigate", MitigateRequest(by=by, request_id=request_id, summary=summary), as_json)


@app.command("resolve", help="resolve: stops escalation, notifies, starts the post-mortem")
def resolve(key: Key, by: By, request_id: RequestId = None, as_json: JsonResult = False, summary: Summary = "") -> None:
    _act(key, "resolve", ResolveRequest(by=by, request_id=request_id, summary=summary), as_json)


@app.command("annotate", help="add a note to the timeline")
def annotate(
    key: Key,
    by: By,
    text: Annotated[str, typer.Option("--text")],
    request_id: RequestId = None,
    as_json: JsonResult = False,
) -> None:
    _act(key, "annotate", AnnotateRequest(by=by, request_id=request_id, text=text), as_json)


@app.command("severity", help="change the severity (re-plans response and escalation)")
def severity(
    key: Key,
    severity: Annotated[str, typer.Argument(metavar="SEVERITY")],
    by: By,
    request_id: RequestId = None,
    as_json: JsonResult = False,
    reason: Reason = "",
) -> None:
    request = SetSeverityRequest(by=by, request_id=request_id, severity=severity, reason=reason)
    _act(key, "set_severity", request, as_json)


@app.command("snooze", help="pause paging for a while (at most 4 hours); management escalation goes on")
def snooze(
    key: Key,
    by: By,
    duration: Annotated[str, typer.Option("--for", help="how long, e.g. 30m or '1 hour'")],
    request_id: RequestId = None,
    as_json: JsonResult = False,
) -> None:
    try:
        request = SnoozeRequest(by=by, request_id=request_id, duration=parse_duration(duration))
    except ValueError as err:
        raise CliError(f"--for {duration}: {_first_problem(err)}") from None
    _act(key, "snooze", request, as_json)


@app.command("take", help="make yourself the incident's owner (acknowledging it if nobody has)")
def take(key: Key, by: By, request_id: RequestId = None, as_json: JsonResult = False) -> None:
    _act(key, "take", TakeRequest(by=by, request_id=request_id), as_json)


def _first_problem(err: ValueError) -> str:
    """A duration parse error as it is; pydantic's first complaint without its boilerplate."""
    if isinstance(err, ValidationError):
        return str(err.errors()[0]["msg"]).lower()
    return str(err)
