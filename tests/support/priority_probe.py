"""Workflows and an activity that only say when they ran, for tests/integration/test_paging_priority.py.

In their own module: a workflow defined in a test module drags the test's imports into the sandbox.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel
from temporalio import activity, workflow
from temporalio.common import Priority

# The order tasks ran in, in this process. The probe workflows run unsandboxed so that they can append here.
RAN: list[str] = []


class Batch(BaseModel):
    prefix: str
    count: int
    priority: int
    task_queue: str


@activity.defn(name="priority_probe")
async def probe(label: str) -> None:
    RAN.append(label)


@workflow.defn(name="PriorityBatch")
class PriorityBatch:
    """Schedules `count` probe activities at one priority on another queue, all at once, and waits for them."""

    @workflow.run
    async def run(self, batch: Batch) -> None:
        handles = [
            workflow.start_activity(
                probe,
                f"{batch.prefix}{n}",
                task_queue=batch.task_queue,
                start_to_close_timeout=timedelta(seconds=30),
                priority=Priority(priority_key=batch.priority),
            )
            for n in range(batch.count)
        ]
        for handle in handles:
            await handle


@workflow.defn(name="PriorityProbe", sandboxed=False)
class PriorityProbe:
    """Its first workflow task says it ran: the order of these is the order the queue handed them out."""

    @workflow.run
    async def run(self, label: str) -> None:
        RAN.append(label)
