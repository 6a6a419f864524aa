"""Before a runbook's first step: the plan this worker's policy makes of the run's request, what the worker can
do (preflight), and the guard's grant of the service. Any of them can refuse the run.

The plan that runs is always the worker's: the activity `runbook_plan` plans the run's request with the
worker's own policy, and a run handed a plan that differs from it (started directly with a foreign plan, or
rendered from a policy the worker no longer has) is refused before it touches anything. Each check retries a
bounded number of times; a check that keeps failing refuses the run, with the reason on the incident's timeline.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, FailureError, RetryState

with workflow.unsafe.imports_passed_through():
    from activities.runbook import GuardActivities, RunbookActivities
    from activities.runbook_plan import RunbookPlanning
    from tocsin.runbook.contracts import PlanCall, RunbookInput, RunbookResult, preflight_of
    from tocsin.runbook.guard_contracts import GUARD_WORKFLOW_ID, AcquireAnswer, AcquireRequest, ReleaseRequest
    from tocsin.runbook.plan_contracts import RunbookPlan, plan_digest
    from workflows.runbook.context import RunbookContext

# How long the guard holds a service for one run: longer than any sane runbook, short enough to recover.
LEASE = timedelta(hours=2)
WAIT_POLL = timedelta(seconds=30)
# A worker that cannot answer a check within these refuses the run, it never leaves it waiting forever
# (Temporal's default retry policy has no end).
CHECK_ATTEMPTS = 5
CHECK_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=CHECK_ATTEMPTS,
)


def check_options(summary: str) -> workflow.ActivityConfig:
    return workflow.ActivityConfig(
        start_to_close_timeout=timedelta(seconds=30),
        schedule_to_close_timeout=timedelta(minutes=5),
        retry_policy=CHECK_RETRY,
        summary=summary,
    )


def gave_up(what: str, err: ActivityError) -> str:
    """Why a check refused the run, for the timeline."""
    how = {RetryState.MAXIMUM_ATTEMPTS_REACHED: f"{CHECK_ATTEMPTS} times", RetryState.TIMEOUT: "until it timed out"}
    tried = how.get(err.retry_state, "for good") if err.retry_state is not None else "for good"
    return f"{what} failed {tried}: {err.cause or err}"


async def worker_plan(ctx: RunbookContext, inp: RunbookInput) -> RunbookPlan | RunbookResult:
    """The plan this worker's policy makes of the run's request; a refusal when a given plan differs."""
    request = inp.request or (inp.plan.request() if inp.plan else None)
    if request is None:
        return await ctx.finish("refused", "the run names no runbook")
    call = PlanCall(request=request, digest=plan_digest(inp.plan) if inp.plan else None)
    try:
        answer = await workflow.execute_activity_method(
            RunbookPlanning.plan, call, **check_options(f"plan {request.runbook} from the worker's policy")
        )
    except ActivityError as err:
        return await ctx.finish("refused", gave_up("planning", err))
    ctx.digest = answer.digest
    if answer.refused is not None or answer.plan is None:
        return await ctx.finish("refused", answer.refused or "the worker made no plan")
    ctx.roster = answer.roster
    return answer.plan


async def admit(ctx: RunbookContext, plan: RunbookPlan, max_wait: timedelta) -> RunbookResult | None:
    """None once the guard holds the service for this run (release it after); else the refusal."""
    if plan.violations:
        return await ctx.finish("refused", "; ".join(plan.violations))
    try:
        preflight = await workflow.execute_activity_method(
            RunbookActivities.preflight, preflight_of(plan), **check_options("what this worker can do")
        )
    except ActivityError as err:
        return await ctx.finish("refused", gave_up("the preflight", err))
    if preflight.missing:
        return await ctx.finish("refused", "not configured on the worker: " + "; ".join(preflight.missing))
    try:
        answer = await _acquire(ctx, plan, max_wait)
    except ActivityError as err:
        await release(plan)  # in case the guard granted it and only the answer was lost
        return await ctx.finish("refused", gave_up("asking the guard", err))
    if not answer.granted:
        return await ctx.finish("refused", answer.reason)
    return None


async def _acquire(ctx: RunbookContext, plan: RunbookPlan, max_wait: timedelta) -> AcquireAnswer:
    # The rate limit sent is informative only: the guard activity applies the worker's policy's.
    limit = plan.guardrails.rate_limit
    request = AcquireRequest(
        service=plan.service,
        runbook=plan.runbook,
        holder=workflow.info().workflow_id,
        lease=LEASE,
        max_runs=limit.max_runs if limit else None,
        per=limit.per if limit else None,
    )
    deadline = workflow.now() + max_wait
    while True:
        answer = await workflow.execute_activity_method(
            GuardActivities.acquire, request, **check_options(f"guard: {plan.service} for {plan.runbook}")
        )
        waiting = plan.guardrails.concurrency == "wait" and answer.held_by is not None
        if answer.granted or not waiting or workflow.now() + WAIT_POLL > deadline:
            return answer
        await ctx.tell(f"{plan.runbook} waits: {answer.reason}")
        await workflow.sleep(WAIT_POLL, summary=f"waiting for {plan.service} to be free")


async def release(plan: RunbookPlan) -> None:
    guard = workflow.get_external_workflow_handle(GUARD_WORKFLOW_ID)
    try:
        await guard.signal("release", ReleaseRequest(service=plan.service, holder=workflow.info().workflow_id))
    except FailureError as err:
        # The hold lapses with its lease; nothing else is left to do.
        workflow.logger.warning("runbook guard not told of the release: %s", err)
