"""RunbookWorkflow: one runbook run for one incident (`runbook-<key>-<n>`), every step on the record.

Pure orchestration over a plan the worker renders from its own policy (workflows/runbook/checks.py): the
guard grants the service, each step is an activity (or a timer, or a person's decision), and when a step
fails the steps already done are compensated in reverse order (workflows/runbook/execute.py). The incident
hears of each step through the signal `runbook_progress`, and of the outcome: verified → mitigated;
failed → escalated.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from tocsin.runbook.contracts import ApproveStepRequest, RunbookInput, RunbookResult, StepRecord
    from workflows.runbook.checks import admit, release, worker_plan
    from workflows.runbook.context import RunbookContext
    from workflows.runbook.execute import approval_problem, execute


@workflow.defn(name="RunbookWorkflow")
class RunbookWorkflow:
    @workflow.init
    def __init__(self, inp: RunbookInput) -> None:
        self._ctx = RunbookContext.of(inp)

    @workflow.run
    async def run(self, inp: RunbookInput) -> RunbookResult:
        ctx = self._ctx
        planned = await worker_plan(ctx, inp)
        if isinstance(planned, RunbookResult):
            return planned
        refused = await admit(ctx, planned, inp.max_wait)
        if refused is not None:
            return refused
        try:
            return await execute(ctx, planned, inp.requested_by)
        finally:
            await release(planned)

    @workflow.update(name="approve_step")
    def approve_step(self, request: ApproveStepRequest) -> str:
        self._ctx.decisions[request.step] = request
        return f"{request.step}: {'approved' if request.approve else 'rejected'} by {request.by}"

    @approve_step.validator
    def _validate_approve_step(self, request: ApproveStepRequest) -> None:
        problem = approval_problem(self._ctx, request)
        if problem:
            raise ValueError(problem)

    @workflow.query(name="waiting_for")
    def waiting_for(self) -> str | None:
        """The approval step waiting for a person, if any."""
        return self._ctx.waiting_for.name if self._ctx.waiting_for else None

    @workflow.query(name="progress")
    def progress(self) -> list[StepRecord]:
        return self._ctx.records
