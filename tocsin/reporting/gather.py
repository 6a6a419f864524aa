"""The incidents of a window, from Temporal: a visibility list bounded in time and count, then each incident's
own record (a closed one from its history's result, an open one from its `status` query).

Bounded on purpose: at most `limit` executions are read (newest first), and the report says when more were
there. Runs that continued-as-new are left out of the list: the run after them carries the whole state, and
its start time is later, so it is listed whenever its predecessor would have been.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pydantic import ValidationError
from temporalio.client import Client, WorkflowExecution, WorkflowExecutionStatus, WorkflowQueryFailedError
from temporalio.service import RPCError

from tocsin.incident.contracts import IncidentState

READERS = 8  # incidents read at once: enough to hide latency, few enough not to crowd a busy frontend
QUERY_TIMEOUT = timedelta(seconds=10)  # an open incident's query waits on a worker; a report should not hang


@dataclass
class Gathered:
    states: list[IncidentState] = field(default_factory=list)
    truncated: bool = False
    skipped: list[str] = field(default_factory=list)


def window_query(since: datetime) -> str:
    stamp = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"WorkflowType = 'IncidentWorkflow' AND ExecutionStatus != 'ContinuedAsNew' AND StartTime >= '{stamp}'"


async def _read(client: Client, wf: WorkflowExecution) -> IncidentState | str:
    """The incident's state, or why it could not be read."""
    handle = client.get_workflow_handle(wf.id, run_id=wf.run_id)
    try:
        if wf.status == WorkflowExecutionStatus.RUNNING:
            state: IncidentState = await handle.query("status", result_type=IncidentState, rpc_timeout=QUERY_TIMEOUT)
            return state
        if wf.status == WorkflowExecutionStatus.COMPLETED:
            return IncidentState.model_validate(await handle.result(follow_runs=False))
    except RPCError as err:
        return f"{wf.id}: {err.message}"
    except WorkflowQueryFailedError as err:
        return f"{wf.id}: status query failed: {err}"
    except ValidationError as err:
        # A record this version cannot read (written by a much older or newer Tocsin): one incident left out,
        # said so, rather than no report at all.
        return f"{wf.id}: its state does not read as an incident ({err.error_count()} errors)"
    name = wf.status.name.lower() if wf.status else "unknown"
    return f"{wf.id}: ended without resolution ({name})"


async def gather(client: Client, since: datetime, limit: int) -> Gathered:
    listed = [wf async for wf in client.list_workflows(window_query(since), limit=limit + 1)]
    out = Gathered(truncated=len(listed) > limit)
    gate = asyncio.Semaphore(READERS)

    async def read(wf: WorkflowExecution) -> IncidentState | str:
        async with gate:
            return await _read(client, wf)

    for result in await asyncio.gather(*(read(wf) for wf in listed[:limit])):
        if isinstance(result, IncidentState):
            out.states.append(result)
        else:
            out.skipped.append(result)
    return out
