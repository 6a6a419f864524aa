"""The maintenance registry from outside: start, end and list one-off windows (the CLI and the
`maintenance_lookup` activity).

The registry is one long-running workflow, started on first use. A rejected update (an unknown window id, a
window that already ended) is the caller's mistake, reported as a MaintenanceError with the workflow's reason.
"""

from __future__ import annotations

import contextlib
import uuid

from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from tocsin.incident.contracts import INCIDENT_TASK_QUEUE
from tocsin.maintenance.contracts import (
    MAINTENANCE_WORKFLOW_ID,
    EndWindow,
    MaintenanceState,
    StartWindow,
    Window,
)

SUMMARY = "Maintenance windows: while one matches an incident, its pages are held"


class MaintenanceError(Exception):
    """The registry refused: the message says why, in one line."""


async def _ensure_registry(client: Client) -> None:
    # A server that ignores the conflict policy says "already started": it runs, which is all we need.
    with contextlib.suppress(WorkflowAlreadyStartedError):
        await client.start_workflow(
            "MaintenanceWorkflow",
            MaintenanceState(),
            id=MAINTENANCE_WORKFLOW_ID,
            task_queue=INCIDENT_TASK_QUEUE,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            static_summary=SUMMARY,
        )


async def _update(client: Client, name: str, request: StartWindow | EndWindow) -> Window:
    handle = client.get_workflow_handle(MAINTENANCE_WORKFLOW_ID)
    try:
        # A fresh update id per call: the registry applies each at most once, even if the RPC is retried.
        answer = await handle.execute_update(name, request, id=f"{name}-{uuid.uuid4().hex}", result_type=Window)
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        raise MaintenanceError(getattr(cause, "message", None) or str(cause or err)) from None
    return Window.model_validate(answer)


async def start_window(client: Client, request: StartWindow) -> Window:
    await _ensure_registry(client)
    return await _update(client, "start_window", request)


async def end_window(client: Client, request: EndWindow) -> Window:
    await _ensure_registry(client)
    return await _update(client, "end_window", request)


async def current_windows(client: Client) -> MaintenanceState:
    """The registry's windows; none when no window was ever started (the registry does not exist yet)."""
    handle = client.get_workflow_handle(MAINTENANCE_WORKFLOW_ID)
    try:
        state = await handle.query("windows", result_type=MaintenanceState)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return MaintenanceState()
        raise
    return MaintenanceState.model_validate(state)
