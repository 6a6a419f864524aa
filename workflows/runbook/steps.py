"""How RunbookWorkflow runs one planned step (or compensation): the activity, timer or decision behind each action.

Deterministic: what to write is decided here from what the activities read (target_replicas on the count
the cluster reported), so a retried write never compounds (`current * 2` is computed once, not per attempt).
Every call names its runbook (and step): the activities read the limits from the worker's policy by those
names, never from the call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.delivery import DeliveryActivities
    from activities.runbook import RunbookActivities
    from tocsin.durations import format_duration
    from tocsin.incident.contracts import PAGING_TASK_QUEUE, Delivery
    from tocsin.runbook.contracts import (
        HttpCall,
        RolloutCall,
        ScaleApply,
        ScaleRead,
        StepOutcome,
        VerifyQuery,
    )
    from tocsin.runbook.errors import GuardrailViolation
    from tocsin.runbook.guardrails import target_replicas
    from tocsin.runbook.plan_contracts import (
        PlannedApproval,
        PlannedHttp,
        PlannedNotify,
        PlannedRestart,
        PlannedScale,
        PlannedStep,
        PlannedUndo,
        PlannedVerify,
        PlannedWait,
        RunbookPlan,
    )
    from tocsin.runbook.verify import VerifyCheck, VerifyProgress, advance, evaluate
    from workflows.idempotency import idempotency_key

# Permanent failures arrive non-retryable from the activity itself (activities/runbook.py). A conflict is
# retryable there but not here: the workflow reads again and decides again instead of rewriting stale data.
RETHINK = ["Conflict"]
CONFLICT_REREADS = 3
Approver = Callable[[PlannedApproval], Awaitable[tuple[StepOutcome, str]]]


class StepFailed(Exception):
    """A step did not do what it should; the message is for the timeline."""


def _options(timeout: timedelta, summary: str, *, heartbeat: bool = False) -> workflow.ActivityConfig:
    config = workflow.ActivityConfig(
        start_to_close_timeout=timeout,
        retry_policy=RetryPolicy(
            initial_interval=timedelta(seconds=2),
            maximum_interval=timedelta(seconds=30),
            maximum_attempts=5,
            non_retryable_error_types=RETHINK,
        ),
        summary=summary[:200],
    )
    if heartbeat:
        config["heartbeat_timeout"] = timedelta(seconds=30)
    return config


def _reason(err: ActivityError) -> str:
    return str(err.cause or err)


class StepRunner:
    def __init__(self, plan: RunbookPlan, incident: str, approve: Approver) -> None:
        self._plan = plan
        self._incident = incident
        self._approve = approve
        # What each scale step found, for a `replicas: previous` compensation.
        self._found: dict[str, int] = {}
        self._revision: dict[str, int | None] = {}

    async def run(self, step: PlannedStep, compensating: PlannedStep | None = None) -> tuple[StepOutcome, str]:
        try:
            if isinstance(step, PlannedScale):
                return "done", await self._scale(step, compensating)
            if isinstance(step, PlannedRestart | PlannedUndo):
                return "done", await self._rollout(step, compensating)
            if isinstance(step, PlannedHttp):
                return "done", await self._http(step)
            if isinstance(step, PlannedVerify):
                return "done", await self._verify(step)
            if isinstance(step, PlannedApproval):
                return await self._approve(step)
            if isinstance(step, PlannedWait):
                await workflow.sleep(step.duration, summary=f"{step.name}: wait")
                return "done", f"waited {format_duration(step.duration)}"
            if isinstance(step, PlannedNotify):
                return "done", await self._notify(step)
        except ActivityError as err:
            raise StepFailed(_reason(err)) from None
        except GuardrailViolation as err:
            raise StepFailed(str(err)) from None
        raise StepFailed(f"no executor for {step.action}")

    async def _scale(self, step: PlannedScale, compensating: PlannedStep | None) -> str:
        read = ScaleRead(namespace=step.namespace, deployment=step.deployment, runbook=self._plan.runbook)
        for _ in range(CONFLICT_REREADS):
            scale = await workflow.execute_activity_method(
                RunbookActivities.get_scale, read, **_options(timedelta(seconds=30), f"read {step.target}")
            )
            previous = self._found.get(compensating.name) if compensating else None
            target, clamped = target_replicas(step.replicas, scale.replicas, step.max_replicas, previous)
            if compensating is None:
                self._found[step.name] = scale.replicas
            apply = ScaleApply(
                runbook=self._plan.runbook,
                step=step.name,
                target=target,
                based_on=scale,
                wait_for_rollout=step.wait_for_rollout,
                rollout_within=max(step.timeout.total_seconds() - 10, 1),
            )
            try:
                result = await workflow.execute_activity_method(
                    RunbookActivities.apply_scale,
                    apply,
                    **_options(step.timeout, f"scale {step.target} to {target}", heartbeat=step.wait_for_rollout),
                )
            except ActivityError as err:
                if getattr(err.cause, "type", None) == "Conflict":
                    continue  # someone changed it since the read: read again and decide again
                raise
            ceiling = f" (clamped by max_replicas {step.max_replicas})" if clamped else ""
            return result.detail + ceiling
        raise StepFailed(f"{step.target} kept changing while scaling ({CONFLICT_REREADS} attempts)")

    async def _rollout(self, step: PlannedRestart | PlannedUndo, compensating: PlannedStep | None) -> str:
        base = {"namespace": step.namespace, "deployment": step.deployment, "runbook": self._plan.runbook}
        if_revision = None
        if isinstance(step, PlannedUndo):
            # Undo only the revision this run saw (or made): a retried undo never undoes itself.
            if_revision = self._revision.get(compensating.name) if compensating else None
            if if_revision is None:
                status = await workflow.execute_activity_method(
                    RunbookActivities.rollout,
                    RolloutCall(**base, action="status", at=workflow.now()),
                    **_options(timedelta(seconds=30), f"status of {step.target}"),
                )
                if_revision = status.revision
        call = RolloutCall(
            **base,
            action="restart" if isinstance(step, PlannedRestart) else "undo",
            at=workflow.now(),
            to_revision=step.to_revision if isinstance(step, PlannedUndo) else None,
            if_revision=if_revision,
            wait_for_rollout=step.wait_for_rollout,
            rollout_within=max(step.timeout.total_seconds() - 10, 1),
        )
        result = await workflow.execute_activity_method(
            RunbookActivities.rollout,
            call,
            **_options(step.timeout, step.summary(), heartbeat=step.wait_for_rollout),
        )
        self._revision[step.name] = result.revision
        return result.detail

    async def _http(self, step: PlannedHttp) -> str:
        key = f"{workflow.info().workflow_id}/{step.name}"
        result = await workflow.execute_activity_method(
            RunbookActivities.http,
            HttpCall(step=step, idempotency_key=key, runbook=self._plan.runbook),
            **_options(step.timeout, step.summary()),
        )
        return f"{step.method} answered {result.status}"

    async def _verify(self, step: PlannedVerify) -> str:
        progress = VerifyProgress(started_at=workflow.now())
        while True:
            try:
                samples = await workflow.execute_activity_method(
                    RunbookActivities.query_prometheus,
                    VerifyQuery(query=step.query),
                    **_options(timedelta(seconds=30), f"{step.name}: {step.query}"),
                )
                check = evaluate(step.condition, samples, step.no_data)
            except ActivityError as err:
                # An unanswerable check is not evidence of health: it counts as not held.
                check = VerifyCheck(held=False, detail=f"no answer: {_reason(err)}")
            progress, state = advance(step, progress, check, workflow.now())
            if state == "passed":
                return f"held after {progress.checks} checks: {progress.last}"
            if state == "failed":
                raise StepFailed(f"did not hold within {format_duration(step.timeout)}: {progress.last}")
            await workflow.sleep(step.interval, summary=f"{step.name}: next check")

    async def _notify(self, step: PlannedNotify) -> str:
        receipts = []
        for channel in step.channels:
            delivery = Delivery(
                idempotency_key=idempotency_key(f"{step.name}/{channel}"),
                incident=self._incident,
                channel="slack",
                target=channel,
                message=step.message,
                at=workflow.now(),
                service=self._plan.service,
                severity=self._plan.severity,
            )
            # `deliver` is registered only on the paging queue's worker (worker/main.py), with its own slots.
            receipt = await workflow.execute_activity_method(
                DeliveryActivities.deliver,
                delivery,
                **workflow.ActivityConfig(**_options(step.timeout, f"notify {channel}"), task_queue=PAGING_TASK_QUEUE),
            )
            receipts.append(f"{channel}: {receipt.provider_id}")
        return "; ".join(receipts)
