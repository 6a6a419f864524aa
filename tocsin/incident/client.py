"""Operations on incidents through Temporal, shared by the CLI and (later) the alert receiver."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar, cast

from pydantic import BaseModel
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import Priority, WorkflowIDConflictPolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from tocsin import search_attributes as sa
from tocsin.incident.contracts import (
    INCIDENT_TASK_QUEUE,
    OPEN_STATUSES,
    IncidentInput,
    IncidentState,
    incident_workflow_id,
)
from tocsin.incident.updates import UpdateResult
from tocsin.policy.priority import incident_priority
from tocsin.policy.schema import Policy

R = TypeVar("R", bound=BaseModel)


class IncidentError(Exception):
    """A refusal or a missing incident, worded for the person who asked."""


@dataclass(frozen=True)
class IncidentRow:
    key: str
    severity: str
    status: str
    service: str
    level: int
    opened_at: datetime | None
    title: str


async def open_incident(client: Client, inp: IncidentInput) -> bool:
    """Start the incident's workflow. False if an incident with this key is already open."""
    try:
        await client.start_workflow(
            "IncidentWorkflow", inp, id_conflict_policy=WorkflowIDConflictPolicy.FAIL, **_start_options(inp)
        )
    except WorkflowAlreadyStartedError:
        return False
    return True


async def open_or_signal(client: Client, inp: IncidentInput, batch: BaseModel, signal: str = "alerts") -> None:
    """Signal-with-start: one call that opens the incident or adds the alerts (or a storm's members) to the
    open one, so concurrent alerts for one key never make two incidents."""
    for attempt in range(3):
        try:
            await client.start_workflow(
                "IncidentWorkflow", inp, start_signal=signal, start_signal_args=[batch], **_start_options(inp)
            )
            return
        except WorkflowAlreadyStartedError:
            # Two starts raced and this one lost (seen on the time-skipping test server): nothing of this call
            # was applied, so sending it again signals the incident the winner opened.
            if attempt == 2:
                raise


def _start_options(inp: IncidentInput) -> dict[str, Any]:
    return {
        "id": incident_workflow_id(inp.key),
        "task_queue": INCIDENT_TASK_QUEUE,
        # A sev1 goes ahead of a burst of lesser incidents, its pages with it (tocsin/policy/priority.py).
        "priority": Priority(priority_key=incident_priority(inp.policy, inp.severity, inp.storm)),
        "search_attributes": sa.initial(inp.severity, "triggered", inp.service, 0),
        "memo": {"title": inp.title},
        "static_summary": f"[{inp.severity}] {inp.title} ({inp.service})",
        "static_details": f"Opened from {inp.source}; response workflow: {inp.response_workflow or 'none'}.",
    }


def _handle(client: Client, key: str) -> WorkflowHandle[object, object]:
    return client.get_workflow_handle(incident_workflow_id(key))


async def _describe_or_fail(handle: WorkflowHandle[object, object], key: str) -> WorkflowExecutionStatus | None:
    try:
        return (await handle.describe()).status
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise IncidentError(f"no incident with key {key!r}") from None
        raise


async def send_update(client: Client, key: str, name: str, request: BaseModel) -> UpdateResult:
    """Run update `name`; the request id doubles as Temporal's update id, so a retried call lands once."""
    handle = _handle(client, key)
    status = await _describe_or_fail(handle, key)
    if status == WorkflowExecutionStatus.COMPLETED:
        raise IncidentError(f"incident {key} is resolved and closed; {name} refused")
    if status != WorkflowExecutionStatus.RUNNING:
        raise IncidentError(
            f"incident {key} is closed ({status.name.lower() if status else 'unknown'}); {name} refused"
        )
    request_id = getattr(request, "request_id", None) or str(uuid.uuid4())
    if hasattr(request, "request_id"):
        request = request.model_copy(update={"request_id": request_id})
    try:
        result: UpdateResult = await handle.execute_update(name, request, id=request_id, result_type=UpdateResult)
        return result
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        raise IncidentError(f"{name} refused: {getattr(cause, 'message', None) or cause or err}") from None


async def get_incident(client: Client, key: str) -> IncidentState:
    """Live state from the running workflow; a closed one answers from its recorded result."""
    handle = _handle(client, key)
    status = await _describe_or_fail(handle, key)
    if status == WorkflowExecutionStatus.RUNNING:
        state: IncidentState = await handle.query("status", result_type=IncidentState)
        return state
    if status == WorkflowExecutionStatus.COMPLETED:
        # The recorded result needs no worker: `show` works even while the worker is down.
        return IncidentState.model_validate(await handle.result())
    raise IncidentError(f"incident {key} ended without resolution ({status.name.lower() if status else 'unknown'})")


async def opened_under(client: Client, key: str) -> Policy:
    """The policy snapshot the incident carries (its run's start input, read from the history's first event):
    the roster and chain it paged through, overrides included, whatever the policy file says today."""
    handle = _handle(client, key)
    await _describe_or_fail(handle, key)
    async for event in handle.fetch_history_events(page_size=1):
        started = event.workflow_execution_started_event_attributes
        [inp] = await client.data_converter.decode(started.input.payloads, [IncidentInput])
        return cast(IncidentInput, inp).policy
    raise IncidentError(f"incident {key} has no history to read its policy from")


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


async def list_incidents(
    client: Client,
    status: str | tuple[str, ...] | None = None,
    severity: str | None = None,
    service: str | None = None,
    limit: int = 100,
) -> list[IncidentRow]:
    query = ["WorkflowType = 'IncidentWorkflow'"]
    statuses = (status,) if isinstance(status, str) else status
    if statuses:
        # Several statuses in one query (the open ones): one round trip instead of one per status.
        query.append(f"{sa.STATUS.name} IN ({', '.join(_quote(s) for s in statuses)})")
        if set(statuses) <= set(OPEN_STATUSES):
            # Only a running execution is open: a run that continued as new keeps the status it had then, and
            # would list the same incident twice.
            query.append("ExecutionStatus = 'Running'")
    for key, value in ((sa.SEVERITY, severity), (sa.SERVICE, service)):
        if value:
            query.append(f"{key.name} = {_quote(value)}")
    rows = []
    async for wf in client.list_workflows(" AND ".join(query), limit=limit):
        attrs = wf.typed_search_attributes
        memo = await wf.memo()
        rows.append(
            IncidentRow(
                key=wf.id.removeprefix("incident-"),
                severity=attrs.get(sa.SEVERITY) or "?",
                status=attrs.get(sa.STATUS) or "?",
                service=attrs.get(sa.SERVICE) or "?",
                level=attrs.get(sa.LEVEL) or 0,
                opened_at=wf.start_time,
                title=str(memo.get("title", "")),
            )
        )
    return rows
