"""A granted runbook run: its steps in order, and when one fails or is rejected, the steps already done
compensated in reverse order. An approval step waits for a person's decision (update `approve_step`), or
takes the step's default when nobody decides in time.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from tocsin.runbook.approvals import approver_problem
    from tocsin.runbook.contracts import ApproveStepRequest, RunbookResult, StepOutcome
    from tocsin.runbook.plan_contracts import PlannedApproval, PlannedStep, RunbookPlan
    from workflows.runbook.context import RunbookContext
    from workflows.runbook.steps import StepFailed, StepRunner


async def execute(ctx: RunbookContext, plan: RunbookPlan, requested_by: str) -> RunbookResult:
    runner = StepRunner(plan, ctx.incident, lambda step: await_approval(ctx, step))
    checked = f" (plan sha256 {ctx.digest[:12]}, from the worker's policy)" if ctx.digest else ""
    await ctx.tell(f"{plan.runbook} started by {requested_by}: {len(plan.steps)} steps{checked}")
    done: list[PlannedStep] = []
    for step in plan.steps:
        try:
            outcome, detail = await runner.run(step)
        except StepFailed as failed:
            await ctx.note(step.name, step.action, "failed", str(failed))
            await _compensate(ctx, runner, done)
            return await ctx.finish("failed", f"step {step.name} failed: {failed}")
        await ctx.note(step.name, step.action, outcome, detail)
        if outcome == "rejected":
            await _compensate(ctx, runner, done)
            return await ctx.finish("rejected", f"step {step.name}: {detail}")
        done.append(step)
    verified = any(s.action == "verify" for s in plan.steps)
    return await ctx.finish("succeeded", "every step done" + (", verified" if verified else ""), verified)


async def _compensate(ctx: RunbookContext, runner: StepRunner, done: list[PlannedStep]) -> None:
    """Undo what was done, last first. A compensation that fails is recorded and the rest still run."""
    for step in reversed(done):
        undo = step.compensate
        if undo is None:
            continue
        try:
            _, detail = await runner.run(undo, compensating=step)
            await ctx.note(undo.name, undo.action, "done", detail, compensation=True)
        except StepFailed as failed:
            await ctx.note(undo.name, undo.action, "failed", str(failed), compensation=True)


async def await_approval(ctx: RunbookContext, step: PlannedApproval) -> tuple[StepOutcome, str]:
    ctx.waiting_for = step
    ask = f": {step.message}" if step.message else ""
    await ctx.tell(f"step {step.name} waits for approval by {', '.join(step.approvers)}{ask}")
    try:
        await workflow.wait_condition(
            lambda: step.name in ctx.decisions,
            timeout=step.timeout,
            timeout_summary=f"approval of {step.name} ({step.default} after the timeout)",
        )
    except TimeoutError:
        outcome: StepOutcome = "approved" if step.default == "approve" else "rejected"
        return outcome, f"nobody decided within the timeout: {step.default} by default"
    finally:
        ctx.waiting_for = None
    decision = ctx.decisions[step.name]
    note = f" ({decision.note})" if decision.note else ""
    decided: StepOutcome = "approved" if decision.approve else "rejected"
    return decided, f"{decided} by {decision.by}{note}"


def approval_problem(ctx: RunbookContext, request: ApproveStepRequest) -> str | None:
    """Why `request` may not decide now (for the update's caller), or None when it may."""
    waiting = ctx.waiting_for
    if waiting is None or waiting.name != request.step:
        now = f"step {waiting.name} is" if waiting else "no step is"
        return f"step {request.step!r} is not waiting for approval ({now})"
    # Checked at this moment against the roster of the worker's policy.
    return approver_problem(ctx.roster, waiting, request.by, workflow.now())
