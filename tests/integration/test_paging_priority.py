"""Does the dev server hand a backlog out by priority? The experiment behind tocsin/devserver.py's PRIORITY_FLAGS.

A queue nobody polls gets 200 priority-5 tasks, then 5 priority-1 tasks; once the server counts them all in its
backlog, a worker with one slot starts and the order they run in is recorded. With the flags `tocsin up` gives
its server (one write partition) the priority-1 tasks run first, allowing a few the server had already lined
up; with the new matcher off they run among the last, which shows the test can tell. With the server's
default four partitions they ran among the first 8 to 15, in no fixed order, so that case is not a test here
(docs/paging-priority.md has the figures). Order, not time: nothing here asserts how long anything took.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.common import Priority
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from tests.support.harness import venv_binary
from tests.support.priority_probe import RAN, Batch, PriorityBatch, PriorityProbe, probe
from tocsin.devserver import PRIORITY_FLAGS, DevServer
from tocsin.settings import Settings

BACKLOG = 200  # priority 5
URGENT = 5  # priority 1
# Tasks the server may have lined up for the first poll before the urgent ones arrived (seen: one or two).
LINED_UP = 5
# Waiting for the server to count the backlog, or for the worker to drain it: a hang fails, nothing is timed.
PATIENCE = 120.0

Case = Callable[[Client], Awaitable[list[str]]]


async def _server(flags: tuple[str, ...]) -> WorkflowEnvironment:
    return await WorkflowEnvironment.start_local(
        dev_server_existing_path=venv_binary("temporal"),
        data_converter=pydantic_data_converter,
        dev_server_extra_args=list(flags),
    )


@pytest.fixture(scope="module")
async def tocsin_server() -> AsyncIterator[WorkflowEnvironment]:
    env = await _server(PRIORITY_FLAGS)
    yield env
    await env.shutdown()


async def _eventually(what: str, check: Callable[[], Awaitable[bool]]) -> None:
    deadline = asyncio.get_running_loop().time() + PATIENCE
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"{what} did not happen within {PATIENCE:.0f}s")
        await asyncio.sleep(0.1)


async def _backlogged(client: Client, queue: str, kind: TaskQueueType.ValueType, count: int) -> None:
    """Until the server counts `count` tasks in the queue's backlog. The urgent tasks are added only once the
    others are all there: arriving first, they would run first in any order, priority or not."""
    request = DescribeTaskQueueRequest(
        namespace=client.namespace, task_queue=TaskQueue(name=queue), task_queue_type=kind, report_stats=True
    )

    async def counted() -> bool:
        # The whole queue's count: the old matcher (the control) files every task under the default priority.
        described = await client.workflow_service.describe_task_queue(request)
        return described.stats.approximate_backlog_count == count

    await _eventually(f"a backlog of {count} tasks on {queue}", counted)


async def activity_tasks(client: Client) -> list[str]:
    """Deliveries are activity tasks: the paging queue's case."""
    queue = f"act-{uuid.uuid4().hex[:8]}"
    RAN.clear()
    async with Worker(client, task_queue=f"{queue}-batches", workflows=[PriorityBatch]):
        batches = []
        for prefix, count, priority, waiting in (("low", BACKLOG, 5, BACKLOG), ("URGENT", URGENT, 1, BACKLOG + URGENT)):
            batch = Batch(prefix=prefix, count=count, priority=priority, task_queue=queue)
            batches.append(
                await client.start_workflow(
                    PriorityBatch.run, batch, id=f"{queue}-{prefix}", task_queue=f"{queue}-batches"
                )
            )
            await _backlogged(client, queue, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY, waiting)
        async with Worker(client, task_queue=queue, activities=[probe], max_concurrent_activities=1):
            await asyncio.wait_for(asyncio.gather(*(b.result() for b in batches)), PATIENCE)
    return list(RAN)


async def workflow_tasks(client: Client) -> list[str]:
    """An incident's own turn is a workflow task: the incidents queue's case."""
    queue = f"wf-{uuid.uuid4().hex[:8]}"
    RAN.clear()
    for prefix, count, priority, waiting in (("low", BACKLOG, 5, BACKLOG), ("URGENT", URGENT, 1, BACKLOG + URGENT)):
        for n in range(count):
            await client.start_workflow(
                PriorityProbe.run,
                f"{prefix}{n}",
                id=f"{queue}-{prefix}{n}",
                task_queue=queue,
                priority=Priority(priority_key=priority),
            )
        await _backlogged(client, queue, TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, waiting)
    # Two slots is the SDK's least for workflow tasks; the order is still the server's hand-out order.
    async with Worker(client, task_queue=queue, workflows=[PriorityProbe], max_concurrent_workflow_tasks=2):
        await _eventually("every probe workflow's first task", lambda: _ran(BACKLOG + URGENT))
    return list(RAN)


async def _ran(count: int) -> bool:
    return len(RAN) >= count


def _urgent_places(order: list[str]) -> list[int]:
    return [place for place, label in enumerate(order) if label.startswith("URGENT")]


@pytest.mark.parametrize("case", [activity_tasks, workflow_tasks], ids=["activity tasks", "workflow tasks"])
async def test_with_tocsins_flags_priority_1_runs_before_the_priority_5_backlog(
    tocsin_server: WorkflowEnvironment, case: Case
) -> None:
    order = await case(tocsin_server.client)
    assert len(order) == BACKLOG + URGENT
    urgent = _urgent_places(order)
    assert len(urgent) == URGENT
    # Every urgent task before the backlog's remaining 195, whatever the server had lined up first.
    assert max(urgent) < URGENT + LINED_UP, f"priority-1 tasks ran at {urgent} of {len(order)}"


async def test_without_the_new_matcher_priority_is_ignored() -> None:
    """The control: a server that ignores priority hands the urgent tasks out about last, so the test above
    would fail against it."""
    env = await _server(
        (
            "--dynamic-config-value",
            "matching.useNewMatcher=false",
            "--dynamic-config-value",
            "matching.numTaskqueueWritePartitions=1",
        )
    )
    try:
        order = await activity_tasks(env.client)
    finally:
        await env.shutdown()
    assert min(_urgent_places(order)) >= URGENT + LINED_UP, f"priority-1 tasks ran at {_urgent_places(order)}"


def test_tocsin_up_starts_its_server_with_the_priority_flags(tmp_path: Path) -> None:
    command = DevServer(Settings(home=tmp_path)).command()
    flags = [command[n + 1] for n, arg in enumerate(command) if arg == "--dynamic-config-value"]
    assert "matching.numTaskqueueWritePartitions=1" in flags
    assert "matching.useNewMatcher=true" in flags
