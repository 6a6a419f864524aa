"""The incident's side of runbooks: start each as a child RunbookWorkflow, follow its progress, act on its outcome.

A runbook asked for (by the response workflow's execute_runbook, or `tocsin runbook run` through the update
`run_runbook`) is queued in the state and started by the main loop, so the handler stays synchronous and the
id it answers (`runbook-<key>-<n>`) is the one that runs. The child reports each step with the signal
`runbook_progress`; its outcome moves the incident: verified → mitigated, failed or rejected → escalated.

`run_runbook` names a runbook and gives labels, never a plan: the child has the worker plan it from the
worker's own policy (workflows/runbook), and a plan rendered at triage passes the same check there.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import operator
from datetime import timedelta

from temporalio import workflow
from temporalio.common import Priority
from temporalio.exceptions import WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from tocsin.incident.contracts import INCIDENT_TASK_QUEUE, PendingRunbook, PlannedAction
    from tocsin.incident.updates import UpdateResult
    from tocsin.policy.priority import RUNBOOK
    from tocsin.runbook.contracts import RunbookInput, RunbookProgress, RunRunbookRequest, runbook_workflow_id
    from tocsin.runbook.plan_contracts import PlanRequest, RunbookPlan
    from workflows.incident.core import IncidentCore
    from workflows.incident.requests import Requests
    from workflows.runbook import RunbookWorkflow

HEARD_WITHIN = timedelta(minutes=1)


class Runbooks:
    def __init__(self, core: IncidentCore, requests: Requests) -> None:
        self._core = core
        self._requests = requests

    def from_action(self, action: PlannedAction) -> None:
        """The response workflow's execute_runbook: its plan was rendered at triage, or why it could not be."""
        name = action.params.get("runbook", action.type)
        if "plan" in action.params:
            self._queue(self._core.input.runbooks[int(action.params["plan"])], "policy")
        else:
            reason = action.params.get("plan_error", "no plan was rendered for it")
            self._core.record("runbook", f"{name} not run: {reason}")

    def _queue(self, plan: RunbookPlan | None, by: str, request: PlanRequest | None = None) -> str:
        state = self._core.state
        child_id = runbook_workflow_id(state.key, len(state.runbooks) + 1)
        state.runbooks.append(child_id)
        pending = PendingRunbook(workflow_id=child_id, plan=plan, request=request, requested_by=by)
        state.runbooks_pending.append(pending)
        self._core.wake()
        return child_id

    async def start_queued(self) -> None:
        core, state = self._core, self._core.state
        info = workflow.info()
        while state.runbooks_pending and state.status != "resolved":
            pending = state.runbooks_pending.pop(0)
            child_id = pending.workflow_id
            asked = pending.plan or pending.request
            if asked is None:
                continue  # neither a plan nor a name: nothing to run (not written by this code)
            run = RunbookInput(
                plan=pending.plan,
                request=pending.request,
                incident=state.key,
                incident_workflow_id=info.workflow_id,
                requested_by=pending.requested_by,
                roster=core.input.policy.roster,
            )
            try:
                await workflow.start_child_workflow(
                    RunbookWorkflow.run,
                    run,
                    id=child_id,
                    task_queue=INCIDENT_TASK_QUEUE,
                    # Remediation, with its planning and checks: after every incident's pages.
                    priority=Priority(priority_key=RUNBOOK),
                    # A runbook finishes (or compensates) even if the incident is resolved meanwhile.
                    parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                    static_summary=f"Runbook {asked.runbook} for {asked.service} ({state.key})",
                )
                core.record("runbook", f"{asked.runbook} started: {child_id}")
            except WorkflowAlreadyStartedError:
                core.record("runbook", f"{child_id} already exists; not started again")
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

    def progress(self, progress: RunbookProgress) -> None:
        core, state = self._core, self._core.state
        if progress.workflow_id not in state.runbooks_heard:
            state.runbooks_heard.append(progress.workflow_id)
        if state.status == "resolved":
            return
        core.record("runbook", progress.text)
        if progress.outcome is None:
            return
        if progress.outcome == "succeeded" and progress.verified and state.status in ("triggered", "acknowledged"):
            now = workflow.now()
            if state.acknowledged_at is None:
                state.acknowledged_by, state.acknowledged_at = "runbook", now
            state.status, state.mitigated_at = "mitigated", now
            state.next_escalation_at = None
            core.record("mitigated", f"mitigated: {progress.workflow_id} verified the fix")
        elif progress.outcome in ("failed", "rejected") and not state.escalation.exhausted:
            state.escalation.pending_manual += 1
            core.record("escalated", f"escalated: {progress.workflow_id} {progress.outcome}")
        core.wake()

    def run(self, request: RunRunbookRequest) -> UpdateResult:
        core, state = self._core, self._core.state
        name = request.runbook or ""
        child_id = runbook_workflow_id(state.key, len(state.runbooks) + 1)

        def queue() -> None:
            # The incident's own service, severity and labels; the request's labels and parameters over them.
            asked = PlanRequest(
                runbook=name,
                service=state.service,
                severity=state.severity,
                labels={**state.labels, **request.labels},
                parameters=request.parameters,
            )
            self._queue(None, request.by, asked)
            core.record("runbook", f"{name} requested by {request.by}: {child_id}", by=request.by)

        return self._requests.answer(request, f"{name} queued as {child_id}", queue)

    def validate_run(self, request: RunRunbookRequest) -> None:
        if request.plan is not None:
            raise ValueError(
                "run_runbook takes a runbook's name and labels, never a plan: "
                "the worker plans the runbook from its own policy"
            )
        if self._requests.seen(request):
            return  # a repeated request answers its first result
        if self._core.resolved():
            raise ValueError(f"incident {self._core.state.key} is resolved; it runs no more runbooks")
        if not request.runbook:
            raise ValueError("name the runbook to run (`runbook`)")
