"""Runbooks as child workflows, time-skipped, against a Kubernetes apps/v1 fake, a Prometheus HTTP API and an
admin endpoint, each a real loopback server (tests/support/fake_kubernetes.py, tests/support/vendor_server.py).

Success mitigates the incident; a verification that never holds compensates in reverse and escalates; an
approval nobody answers takes the severity's default; a second runbook on a busy service is refused; a
worker lost mid-step resumes without repeating the step that was done.

The worker plans and checks every run with its own policy (Settings.policy): here the default policy with
loopback allowed for the admin API's http steps, and two runbooks of the tests' own (tests/support/runbook_stack.py).
"""

from __future__ import annotations

import asyncio
import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from tests.support.harness import outbox, run_workers, start_incident, unique_key
from tests.support.runbook_stack import DB_TOKEN, Stack, write_policy
from tocsin.cli import runbooks as cli
from tocsin.incident.client import get_incident
from tocsin.policy.schema import Policy
from tocsin.roster import resolve
from tocsin.runbook.contracts import ApproveStepRequest, RunbookInput, RunbookResult, runbook_workflow_id
from tocsin.runbook.guard_contracts import AcquireAnswer, AcquireRequest, GuardState, ReleaseRequest
from tocsin.runbook.planner import plan_from_policy
from tocsin.settings import Settings
from workflows.runbook import RunbookWorkflow
from workflows.runbook_guard import RunbookGuardWorkflow

SERVICE_DOWN = {"alertname": "ServiceAvailabilityLow", "environment": "prod"}


def _tests_runbooks(raw: dict[str, Any]) -> None:
    """`pause` (one wait step, runs wait their turn) and `quick_recovery` (the playbook, verified in seconds)."""
    runbooks = raw["runbooks"]
    runbooks["pause"] = {
        "guardrails": {"concurrency": "wait"},
        "steps": [{"name": "pause", "action": "wait", "duration": "10 minutes"}],
    }
    quick = copy.deepcopy(runbooks["service_recovery_playbook"])
    quick["steps"][2].update({"for": "8 seconds", "interval": "1 second"})
    runbooks["quick_recovery"] = quick


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    return write_policy(tmp_path, _tests_runbooks)


def timeline(state: Any, kind: str) -> list[str]:
    return [e.text for e in state.timeline if e.kind == kind]


async def test_runbook_success_mitigates_the_incident(
    env: WorkflowEnvironment, settings: Settings, stack: Stack, policy: Policy
) -> None:
    async with run_workers(env.client, settings, runbooks=stack.activities(policy)):
        inp, _ = await start_incident(env.client, policy, labels=SERVICE_DOWN, workflow="service_down_detection")
        await env.sleep(timedelta(minutes=8))
        state = await get_incident(env.client, inp.key)
        child = env.client.get_workflow_handle(runbook_workflow_id(inp.key, 1))
        result = RunbookResult.model_validate(await child.result())

    assert result.outcome == "succeeded" and result.verified
    assert [(s.step, s.outcome) for s in result.steps] == [
        ("scale_out", "done"),
        ("restart", "done"),
        ("error_rate_recovered", "done"),
        ("tell_responders", "done"),
    ]
    assert stack.replicas() == 6  # current * 2, once
    assert len(stack.writes("/scale")) == 1
    assert state.status == "mitigated" and state.acknowledged_by == "runbook"
    runbook_lines = timeline(state, "runbook")
    assert runbook_lines[0] == f"service_recovery_playbook started: runbook-{inp.key}-1"
    assert any("scale_out (kubernetes.scale): done: production/checkout: 3 → 6 replicas" in t for t in runbook_lines)
    assert timeline(state, "mitigated") == [f"mitigated: runbook-{inp.key}-1 verified the fix"]
    # The notify step went where notifications go (the outbox here), under the runbook's own key.
    assert any(e["id"].endswith("/tell_responders/#incidents") for e in outbox(settings, inp.key))


async def test_failed_verification_compensates_in_reverse_and_escalates(
    env: WorkflowEnvironment, settings: Settings, stack: Stack, policy: Policy
) -> None:
    stack.error_rate = "0.30"
    async with run_workers(env.client, settings, runbooks=stack.activities(policy)):
        inp, _ = await start_incident(env.client, policy, labels=SERVICE_DOWN, workflow="service_down_detection")
        # Verification gives up after 15 minutes. (Sleeping skips time; awaiting a child's result alone does not.)
        await env.sleep(timedelta(minutes=17))
        child = env.client.get_workflow_handle(runbook_workflow_id(inp.key, 1))
        result = RunbookResult.model_validate(await child.result())
        await env.sleep(timedelta(seconds=5))
        state = await get_incident(env.client, inp.key)

    assert result.outcome == "failed"
    assert result.reason.startswith("step error_rate_recovered failed: did not hold within")
    assert [(s.step, s.outcome, s.compensation) for s in result.steps] == [
        ("scale_out", "done", False),
        ("restart", "done", False),
        ("error_rate_recovered", "failed", False),
        ("undo-scale_out", "done", True),
    ]
    assert stack.replicas() == 3  # back to the count scale_out found
    assert [w.json["spec"]["replicas"] for w in stack.writes("/scale")] == [6, 3]
    assert state.status == "triggered"
    assert timeline(state, "escalated") == [f"escalated: runbook-{inp.key}-1 failed"]


def db_run(policy: Policy, severity: str, key: str) -> RunbookInput:
    plan = plan_from_policy(
        policy,
        "database_performance_optimization",
        service="checkout",
        severity=severity,
        labels={"database": "orders", "service": "checkout"},
    )
    return RunbookInput(plan=plan, incident=key, roster=policy.roster)


@pytest.mark.parametrize(("severity", "outcome", "calls"), [("sev1", "succeeded", 2), ("sev2", "rejected", 0)])
async def test_approval_timeout_takes_the_severitys_default(
    env: WorkflowEnvironment,
    settings: Settings,
    stack: Stack,
    policy: Policy,
    severity: str,
    outcome: str,
    calls: int,
) -> None:
    key = unique_key("db")
    async with run_workers(env.client, settings, runbooks=stack.activities(policy)):
        result = RunbookResult.model_validate(
            await env.client.execute_workflow(
                "RunbookWorkflow",
                db_run(policy, severity, key),
                id=runbook_workflow_id(key, 1),
                task_queue="incidents",
            )
        )
    assert result.outcome == outcome
    assert result.steps[0].step == "approve"
    assert result.steps[0].detail.startswith("nobody decided within the timeout")
    admin = [r for r in stack.server.requests if r.path.startswith("/databases/orders/")]
    assert len(admin) == calls
    assert all(r.headers["authorization"] == f"Bearer {DB_TOKEN}" for r in admin)


async def test_a_worker_lost_mid_step_resumes_without_repeating_a_done_step(
    dev_env: WorkflowEnvironment, settings: Settings, stack: Stack, policy: Policy
) -> None:
    """On the real dev server, in real time: a verify step of seconds, not minutes."""
    plan = plan_from_policy(policy, "quick_recovery", service="checkout", severity="sev1")
    key = unique_key("ck")

    def checks() -> int:
        return len([r for r in stack.server.requests if r.path == "/api/v1/query"])

    async with run_workers(dev_env.client, settings, runbooks=stack.activities(policy)):
        handle = await dev_env.client.start_workflow(
            "RunbookWorkflow",
            RunbookInput(plan=plan, incident=key),
            id=runbook_workflow_id(key, 1),
            task_queue="incidents",
        )
        while checks() < 1:  # scaled, restarted, and verifying: between two checks of the verify step
            await asyncio.sleep(0.05)
    at_switch = checks()
    # The first worker is gone mid-step, its cache with it; a new one replays the history and carries on.
    async with run_workers(dev_env.client, settings, runbooks=stack.activities(policy)):
        result = RunbookResult.model_validate(await asyncio.wait_for(handle.result(), 60))

    assert result.outcome == "succeeded"
    assert stack.replicas() == 6 and len(stack.writes("/scale")) == 1, "the scale step ran once"
    restarts = [r for r in stack.server.requests if r.method == "PATCH" and r.path.endswith("/deployments/checkout")]
    assert len(restarts) == 1, "the restart ran once"
    assert [s.step for s in result.steps] == ["scale_out", "restart", "error_rate_recovered", "tell_responders"]
    assert checks() > at_switch, "the second worker went on with the verify step where the first left it"


async def test_cli_runs_a_runbook_for_an_incident_and_a_person_approves_it(
    env: WorkflowEnvironment,
    settings: Settings,
    stack: Stack,
    policy: Policy,
    capsys: pytest.CaptureFixture[str],
) -> None:
    async def connect() -> Client:
        return env.client

    async with run_workers(env.client, settings, runbooks=stack.activities(policy)):
        inp, _ = await start_incident(env.client, policy, severity="sev2", labels={"database": "orders"})
        await cli.run_for_incident(connect, "database_performance_optimization", inp.key, by="carol", labels={})
        assert capsys.readouterr().out.strip() == (
            f"{inp.key}: database_performance_optimization queued as runbook-{inp.key}-1"
        )
        await env.sleep(timedelta(seconds=10))

        on_call = resolve(policy.roster, "primary_oncall", datetime.now(UTC)).people[0].id
        approval = ApproveStepRequest(step="approve", by=on_call, approve=True, note="go")
        await cli.approve_step(connect, inp.key, approval)
        assert capsys.readouterr().out.strip() == f"runbook-{inp.key}-1: approve: approved by {on_call}"
        await env.sleep(timedelta(minutes=15))  # p95 below 1s for 10 minutes
        state = await get_incident(env.client, inp.key)

    assert state.status == "mitigated"
    lines = timeline(state, "runbook")
    assert lines[0] == f"database_performance_optimization requested by carol: runbook-{inp.key}-1"
    assert f"database_performance_optimization step approve (approval): approved: approved by {on_call} (go)" in lines
    admin = [(r.method, r.path) for r in stack.server.requests if r.path.startswith("/databases/")]
    assert admin == [("POST", "/databases/orders/read-replicas"), ("PUT", "/databases/orders/throttle")]


async def test_a_waiting_runbook_runs_after_the_one_holding_its_service(
    env: WorkflowEnvironment, settings: Settings, stack: Stack, policy: Policy
) -> None:
    plan = plan_from_policy(policy, "pause", service="billing", severity="sev3")
    key = unique_key("wt")
    async with run_workers(env.client, settings, runbooks=stack.activities(policy)):
        handles = [
            await env.client.start_workflow(
                "RunbookWorkflow",
                RunbookInput(plan=plan, incident=key),
                id=runbook_workflow_id(key, n),
                task_queue="incidents",
            )
            for n in (1, 2)
        ]
        await env.sleep(timedelta(minutes=25))
        results = [RunbookResult.model_validate(await h.result()) for h in handles]
    assert [r.outcome for r in results] == ["succeeded", "succeeded"]
    ends = sorted(r.steps[0].at for r in results)
    assert ends[1] - ends[0] >= timedelta(minutes=10), "one after the other, never both at once"


async def test_the_guard_holds_a_service_limits_the_rate_and_lets_a_lost_hold_lapse(
    env: WorkflowEnvironment, settings: Settings
) -> None:
    async with run_workers(env.client, settings):
        guard = await env.client.start_workflow(
            RunbookGuardWorkflow.run, GuardState(), id=unique_key("guard"), task_queue="incidents"
        )

        async def acquire(service: str, holder: str) -> AcquireAnswer:
            request = AcquireRequest(
                service=service,
                runbook="pause",
                holder=holder,
                lease=timedelta(hours=2),
                max_runs=2,
                per=timedelta(hours=1),
            )
            return await guard.execute_update(RunbookGuardWorkflow.acquire, request)

        assert (await acquire("billing", "run-1")).granted
        assert (await acquire("billing", "run-1")).granted, "asking again is idempotent"
        busy = await acquire("billing", "run-2")
        assert not busy.granted and busy.held_by == "run-1"
        assert busy.reason.startswith("pause is already acting on billing (run-1, since ")
        await guard.signal(RunbookGuardWorkflow.release, ReleaseRequest(service="billing", holder="run-1"))
        assert (await acquire("billing", "run-2")).granted
        await guard.signal(RunbookGuardWorkflow.release, ReleaseRequest(service="billing", holder="run-2"))
        limited = await acquire("checkout", "run-3")
        assert not limited.granted
        assert limited.reason == "rate limit: pause ran 2 times in the last 1 hour (at most 2)"
        # run-4 holds checkout and vanishes without releasing: the hold lapses with its lease.
        await env.sleep(timedelta(hours=1, minutes=1))
        assert (await acquire("checkout", "run-4")).granted
        await env.sleep(timedelta(hours=2, minutes=1))
        assert (await acquire("checkout", "run-5")).granted
        state = await guard.query(RunbookGuardWorkflow.holds)
        assert list(state.holds) == ["checkout"] and state.holds["checkout"].holder == "run-5"
        await guard.terminate("test over")


async def test_a_second_runbook_on_the_service_is_refused_only_an_approver_decides_and_a_rejection_stops(
    dev_env: WorkflowEnvironment, settings: Settings, stack: Stack, policy: Policy
) -> None:
    """On the real dev server: a refused update leaves no trace in history (the time-skipping server's
    handling of rejected updates is not faithful)."""
    key = unique_key("db")
    async with run_workers(dev_env.client, settings, runbooks=stack.activities(policy)):
        run = db_run(policy, "sev2", key)
        handle = await dev_env.client.start_workflow(
            "RunbookWorkflow", run, id=runbook_workflow_id(key, 1), task_queue="incidents"
        )
        while await handle.query(RunbookWorkflow.waiting_for) != "approve":
            await asyncio.sleep(0.1)
        # The database runbook holds checkout while it waits: the recovery playbook (refuse) cannot start.
        other = plan_from_policy(policy, "service_recovery_playbook", service="checkout", severity="sev1")
        second = RunbookResult.model_validate(
            await dev_env.client.execute_workflow(
                "RunbookWorkflow",
                RunbookInput(plan=other, incident=key),
                id=runbook_workflow_id(key, 2),
                task_queue="incidents",
            )
        )
        assert second.outcome == "refused"
        assert "database_performance_optimization is already acting on checkout" in second.reason
        assert stack.writes("/scale") == []
        on_call = resolve(policy.roster, "primary_oncall", datetime.now(UTC)).people[0].id
        off_call = next(p for p in ("alice", "bob", "carol", "dave") if p != on_call)
        # Only a person of the roster holding the role now: not a stranger, not the rotation's name typed as a
        # person, not a roster member who is off call, not someone outside the rotation.
        refusals = {
            "mallory": "'mallory' is not an approver of approve (primary_oncall): not a person of the roster",
            "primary_oncall": "'primary_oncall' is not an approver of approve (primary_oncall): not a person of",
            off_call: f"'{off_call}' is not an approver of approve (primary_oncall; now: {on_call})",
            "erin": f"'erin' is not an approver of approve (primary_oncall; now: {on_call})",
        }
        for who, message in refusals.items():
            with pytest.raises(WorkflowUpdateFailedError) as refused:
                await handle.execute_update("approve_step", ApproveStepRequest(step="approve", by=who))
            assert message in str(refused.value.cause)
        with pytest.raises(WorkflowUpdateFailedError) as wrong_step:
            await handle.execute_update("approve_step", ApproveStepRequest(step="enable_read_replicas", by="alice"))
        assert "step 'enable_read_replicas' is not waiting for approval (step approve is)" in str(
            wrong_step.value.cause
        )
        assert await handle.query(RunbookWorkflow.waiting_for) == "approve", "no refused decision counted"
        request = ApproveStepRequest(step="approve", by=on_call, approve=False, note="not during the sale")
        await handle.execute_update("approve_step", request, result_type=str)
        result = RunbookResult.model_validate(await asyncio.wait_for(handle.result(), 30))
    assert result.outcome == "rejected"
    assert result.reason == f"step approve: rejected by {on_call} (not during the sale)"
    assert not [r for r in stack.server.requests if r.path.startswith("/databases/")], "nothing was done"
