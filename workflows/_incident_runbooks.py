"""The incident's side of runbooks: start each as a child RunbookWorkflow, follow its progress, act on its outcome.

A runbook asked for (by the response workflow's execute_runbook, or `tocsin runbook run` through the update
`run_runbook`) is queued in the state and started by the main loop, so the handler stays synchronous and the
id it answers (`runbook-<key>-<n>`) is the one that runs. The child reports each step with the signal
`runbook_progress`; its outcome moves the incident: verified → mitigated, failed or rejected → escalated.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import operator
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from tocsin.models import INCIDENT_TASK_QUEUE, IncidentInput, IncidentState, PendingRunbook, PlannedAction
    from tocsin.runbooks.contracts import RunbookInput, RunbookProgress, RunRunbookRequest, runbook_workflow_id
    from tocsin.runbooks.planned import RunbookPlan
    from tocsin.updates import UpdateResult
    from workflows.runbook import RunbookWorkflow

HEARD_WITHIN = timedelta(minutes=1)


class IncidentRunbooks:
    _input: IncidentInput
    _state: IncidentState
    _wake: bool
    _runbooks_enabled: bool

    def _record(self, kind: str, text: str, by: str | None = None) -> None:
        raise NotImplementedError

    def _runbook_action(self, action: PlannedAction) -> None:
        """The response workflow's execute_runbook: its plan was rendered at triage, or why it could not be."""
        name = action.params.get("runbook", action.type)
        if "plan" in action.params:
            self._queue_runbook(self._input.runbooks[int(action.params["plan"])], "policy")
        else:
            reason = action.params.get("plan_error", "no plan was rendered for it")
            self._record("runbook", f"{name} not run: {reason}")

    def _queue_runbook(self, plan: RunbookPlan, by: str) -> str:
        state = self._state
        child_id = runbook_workflow_id(state.key, len(state.runbooks) + 1)
        state.runbooks.append(child_id)
        state.runbooks_pending.append(PendingRunbook(workflow_id=child_id, plan=plan, requested_by=by))
        self._wake = True
        return child_id

    async def _start_runbooks(self) -> None:
        state = self._state
        info = workflow.info()
        while state.runbooks_pending and state.status != "resolved":
            pending = state.runbooks_pending.pop(0)
            plan, child_id = pending.plan, pending.workflow_id
            run = RunbookInput(
                plan=plan,
                incident=state.key,
                incident_workflow_id=info.workflow_id,
                requested_by=pending.requested_by,
                roster=self._input.policy.roster,
            )
            try:
                await workflow.start_child_workflow(
                    RunbookWorkflow.run,
                    run,
                    id=child_id,
                    task_queue=INCIDENT_TASK_QUEUE,
                    # A runbook finishes (or compensates) even if the incident is resolved meanwhile.
                    parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                    static_summary=f"Runbook {plan.runbook} for {plan.service} ({state.key})",
                )
                self._record("runbook", f"{plan.runbook} started: {child_id}")
            except WorkflowAlreadyStartedError:
                self._record("runbook", f"{child_id} already exists; not started again")
                continue
            # The next one starts only once this one has been granted its service (or refused): the guard then
            # decides in the order the runbooks were asked for, not in the order their first tasks ran.
            heard = functools.partial(operator.contains, state.runbooks_heard, child_id)
            with contextlib.suppress(asyncio.TimeoutError):
                await workflow.wait_condition(
                    heard,
                    timeout=HEARD_WITHIN,
                    timeout_summary=f"{child_id} to start",
                )

    @workflow.signal(name="runbook_progress")
    def runbook_progress(self, progress: RunbookProgress) -> None:
        state = self._state
        if progress.workflow_id not in state.runbooks_heard:
            state.runbooks_heard.append(progress.workflow_id)
        if state.status == "resolved":
            return
        self._record("runbook", progress.text)
        if progress.outcome is None:
            return
        if progress.outcome == "succeeded" and progress.verified and state.status in ("triggered", "acknowledged"):
            now = workflow.now()
            if state.acknowledged_at is None:
                state.acknowledged_by, state.acknowledged_at = "runbook", now
            state.status, state.mitigated_at = "mitigated", now
            state.next_escalation_at = None
            self._record("mitigated", f"mitigated: {progress.workflow_id} verified the fix")
        elif progress.outcome in ("failed", "rejected") and not state.escalation.exhausted:
            state.escalation.pending_manual += 1
            self._record("escalated", f"escalated: {progress.workflow_id} {progress.outcome}")
        self._wake = True

    @workflow.update(name="run_runbook")
    def run_runbook(self, request: RunRunbookRequest) -> UpdateResult:
        child_id = self._queue_runbook(request.plan, request.by)
        self._record("runbook", f"{request.plan.runbook} requested by {request.by}: {child_id}", by=request.by)
        state = self._state
        return UpdateResult(
            key=state.key,
            status=state.status,
            severity=state.severity,
            escalation_level=state.escalation_level,
            message=f"{request.plan.runbook} queued as {child_id}",
        )

    @run_runbook.validator
    def _validate_run_runbook(self, request: RunRunbookRequest) -> None:
        if self._state.status == "resolved":
            raise ValueError(f"incident {self._state.key} is resolved; it runs no more runbooks")
        if not self._runbooks_enabled:
            raise ValueError(f"incident {self._state.key} opened before runbooks ran as workflows; start a new one")
        if request.plan.violations:
            raise ValueError(f"runbook {request.plan.runbook} refused: " + "; ".join(request.plan.violations))
