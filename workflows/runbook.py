"""RunbookWorkflow: one runbook run for one incident (`runbook-<key>-<n>`), every step on the record.

Pure orchestration over a plan rendered outside the workflow (tocsin.runbooks.plan): the guard grants the
service, each step is an activity (or a timer, or a person's decision), and when a step fails the steps
already done are compensated in reverse order. The incident hears of each step through the signal
`runbook_progress`, and of the outcome: verified → mitigated; failed → escalated.

Since runbooks-by-name the plan that runs is the worker's: the activity `runbook_plan` plans the run's
request with the worker's own policy, and a run handed a plan that differs from it (started directly with a
foreign plan, or rendered from a policy the worker no longer has) is refused before it touches anything.
The checks before the first step (plan, preflight, guard) retry a bounded number of times; a check that
keeps failing refuses the run, with the reason on the incident's timeline.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, FailureError, RetryState

with workflow.unsafe.imports_passed_through():
    from activities.runbook import GuardActivities, RunbookActivities
    from activities.runbook_plan import RunbookPlanning
    from tocsin.runbooks.approvals import approver_problem
    from tocsin.runbooks.contracts import (
        ApproveStepRequest,
        PlanCall,
        RunbookInput,
        RunbookProgress,
        RunbookResult,
        StepOutcome,
        StepRecord,
        preflight_of,
    )
    from tocsin.runbooks.guard_models import GUARD_WORKFLOW_ID, AcquireAnswer, AcquireRequest, ReleaseRequest
    from tocsin.runbooks.planned import PlannedApproval, PlannedStep, RunbookPlan, plan_digest
    from workflows._runbook_steps import StepFailed, StepRunner

RUNBOOKS_BY_NAME = "runbooks-by-name"
# How long the guard holds a service for one run: longer than any sane runbook, short enough to recover.
LEASE = timedelta(hours=2)
WAIT_POLL = timedelta(seconds=30)
# The checks before the first step: a worker that cannot answer within these refuses the run, it never
# leaves it waiting forever (Temporal's default retry policy has no end).
CHECK_ATTEMPTS = 5
CHECK_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=CHECK_ATTEMPTS,
)


def _gave_up(what: str, err: ActivityError) -> str:
    """Why a check before the first step refused the run, for the timeline."""
    how = {RetryState.MAXIMUM_ATTEMPTS_REACHED: f"{CHECK_ATTEMPTS} times", RetryState.TIMEOUT: "until it timed out"}
    tried = how.get(err.retry_state, "for good") if err.retry_state is not None else "for good"
    return f"{what} failed {tried}: {err.cause or err}"


@workflow.defn(name="RunbookWorkflow")
class RunbookWorkflow:
    @workflow.init
    def __init__(self, inp: RunbookInput) -> None:
        self._input = inp
        self._plan = inp.plan
        self._name = inp.plan.runbook if inp.plan else inp.request.runbook if inp.request else "runbook"
        self._roster = inp.roster
        self._digest: str | None = None
        self._bounded = False
        self._records: list[StepRecord] = []
        self._decisions: dict[str, ApproveStepRequest] = {}
        self._waiting_for: PlannedApproval | None = None

    @workflow.run
    async def run(self, inp: RunbookInput) -> RunbookResult:
        if not workflow.patched(RUNBOOKS_BY_NAME):
            # A run recorded before runbooks-by-name replays as it ran: with the plan it was given.
            assert inp.plan is not None
            return await self._run(inp.plan)
        self._bounded = True
        planned = await self._worker_plan(inp)
        if isinstance(planned, RunbookResult):
            return planned
        self._plan = planned
        return await self._run(planned)

    async def _worker_plan(self, inp: RunbookInput) -> RunbookPlan | RunbookResult:
        """The plan this worker's policy makes of the run's request; a refusal when a given plan differs."""
        request = inp.request or (inp.plan.request() if inp.plan else None)
        if request is None:
            return await self._finish("refused", "the run names no runbook")
        call = PlanCall(request=request, digest=plan_digest(inp.plan) if inp.plan else None)
        try:
            answer = await workflow.execute_activity_method(
                RunbookPlanning.plan, call, **self._check_options(f"plan {request.runbook} from the worker's policy")
            )
        except ActivityError as err:
            return await self._finish("refused", _gave_up("planning", err))
        self._digest = answer.digest
        if answer.refused is not None or answer.plan is None:
            return await self._finish("refused", answer.refused or "the worker made no plan")
        self._roster = answer.roster
        return answer.plan

    def _check_options(self, summary: str) -> workflow.ActivityConfig:
        config = workflow.ActivityConfig(start_to_close_timeout=timedelta(seconds=30), summary=summary)
        if self._bounded:
            config["retry_policy"] = CHECK_RETRY
            config["schedule_to_close_timeout"] = timedelta(minutes=5)
        return config

    async def _run(self, plan: RunbookPlan) -> RunbookResult:
        if plan.violations:
            return await self._finish("refused", "; ".join(plan.violations))
        try:
            preflight = await workflow.execute_activity_method(
                RunbookActivities.preflight, preflight_of(plan), **self._check_options("what this worker can do")
            )
        except ActivityError as err:
            if not self._bounded:
                raise
            return await self._finish("refused", _gave_up("the preflight", err))
        if preflight.missing:
            return await self._finish("refused", "not configured on the worker: " + "; ".join(preflight.missing))
        try:
            answer = await self._acquire(plan)
        except ActivityError as err:
            if not self._bounded:
                raise
            await self._release(plan)  # in case the guard granted it and only the answer was lost
            return await self._finish("refused", _gave_up("asking the guard", err))
        if not answer.granted:
            return await self._finish("refused", answer.reason)
        try:
            return await self._execute(plan)
        finally:
            await self._release(plan)

    async def _acquire(self, plan: RunbookPlan) -> AcquireAnswer:
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
        deadline = workflow.now() + self._input.max_wait
        while True:
            answer = await workflow.execute_activity_method(
                GuardActivities.acquire, request, **self._check_options(f"guard: {plan.service} for {plan.runbook}")
            )
            waiting = plan.guardrails.concurrency == "wait" and answer.held_by is not None
            if answer.granted or not waiting or workflow.now() + WAIT_POLL > deadline:
                return answer
            await self._tell(f"{plan.runbook} waits: {answer.reason}")
            await workflow.sleep(WAIT_POLL, summary=f"waiting for {plan.service} to be free")

    async def _release(self, plan: RunbookPlan) -> None:
        guard = workflow.get_external_workflow_handle(GUARD_WORKFLOW_ID)
        try:
            release = ReleaseRequest(service=plan.service, holder=workflow.info().workflow_id)
            await guard.signal("release", release)
        except FailureError as err:
            # The hold lapses with its lease; nothing else is left to do.
            workflow.logger.warning("runbook guard not told of the release: %s", err)

    async def _execute(self, plan: RunbookPlan) -> RunbookResult:
        runner = StepRunner(plan, self._input.incident, self._approve)
        checked = f" (plan sha256 {self._digest[:12]}, from the worker's policy)" if self._digest else ""
        await self._tell(f"{plan.runbook} started by {self._input.requested_by}: {len(plan.steps)} steps{checked}")
        done: list[PlannedStep] = []
        for step in plan.steps:
            try:
                outcome, detail = await runner.run(step)
            except StepFailed as failed:
                await self._note(step.name, step.action, "failed", str(failed))
                await self._compensate(runner, done)
                return await self._finish("failed", f"step {step.name} failed: {failed}")
            await self._note(step.name, step.action, outcome, detail)
            if outcome == "rejected":
                await self._compensate(runner, done)
                return await self._finish("rejected", f"step {step.name}: {detail}")
            done.append(step)
        verified = any(s.action == "verify" for s in plan.steps)
        return await self._finish("succeeded", "every step done" + (", verified" if verified else ""), verified)

    async def _compensate(self, runner: StepRunner, done: list[PlannedStep]) -> None:
        """Undo what was done, last first. A compensation that fails is recorded and the rest still run."""
        for step in reversed(done):
            undo = step.compensate
            if undo is None:
                continue
            try:
                _, detail = await runner.run(undo, compensating=step)
                await self._note(undo.name, undo.action, "done", detail, compensation=True)
            except StepFailed as failed:
                await self._note(undo.name, undo.action, "failed", str(failed), compensation=True)

    async def _approve(self, step: PlannedApproval) -> tuple[StepOutcome, str]:
        self._waiting_for = step
        ask = f": {step.message}" if step.message else ""
        await self._tell(f"step {step.name} waits for approval by {', '.join(step.approvers)}{ask}")
        try:
            await workflow.wait_condition(
                lambda: step.name in self._decisions,
                timeout=step.timeout,
                timeout_summary=f"approval of {step.name} ({step.default} after the timeout)",
            )
        except TimeoutError:
            outcome: StepOutcome = "approved" if step.default == "approve" else "rejected"
            return outcome, f"nobody decided within the timeout: {step.default} by default"
        finally:
            self._waiting_for = None
        decision = self._decisions[step.name]
        note = f" ({decision.note})" if decision.note else ""
        decided: StepOutcome = "approved" if decision.approve else "rejected"
        return decided, f"{decided} by {decision.by}{note}"

    # --- messages ----------------------------------------------------------------------------------------

    @workflow.update(name="approve_step")
    def approve_step(self, request: ApproveStepRequest) -> str:
        self._decisions[request.step] = request
        return f"{request.step}: {'approved' if request.approve else 'rejected'} by {request.by}"

    @approve_step.validator
    def _validate_approve_step(self, request: ApproveStepRequest) -> None:
        waiting = self._waiting_for
        if waiting is None or waiting.name != request.step:
            now = f"step {waiting.name} is" if waiting else "no step is"
            raise ValueError(f"step {request.step!r} is not waiting for approval ({now})")
        # Checked at this moment against the roster of the worker's policy (the run's own, before runbooks-by-name).
        problem = approver_problem(self._roster, waiting, request.by, workflow.now())
        if problem:
            raise ValueError(problem)

    @workflow.query(name="waiting_for")
    def waiting_for(self) -> str | None:
        """The approval step waiting for a person, if any."""
        return self._waiting_for.name if self._waiting_for else None

    @workflow.query(name="progress")
    def progress(self) -> list[StepRecord]:
        return self._records

    # --- the record ----------------------------------------------------------------------------------------

    async def _note(
        self, step: str, action: str, outcome: StepOutcome, detail: str, *, compensation: bool = False
    ) -> None:
        self._records.append(
            StepRecord(
                step=step, action=action, outcome=outcome, detail=detail, at=workflow.now(), compensation=compensation
            )
        )
        what = "compensation" if compensation else "step"
        await self._tell(f"{self._name} {what} {step} ({action}): {outcome}: {detail}")

    async def _finish(self, outcome: str, reason: str, verified: bool = False) -> RunbookResult:
        result = RunbookResult.model_validate(
            {
                "runbook": self._name,
                "outcome": outcome,
                "reason": reason,
                "verified": verified,
                "steps": self._records,
                "digest": self._digest,
            }
        )
        await self._tell(f"{result.runbook} {outcome}: {reason}", result)
        return result

    async def _tell(self, text: str, result: RunbookResult | None = None) -> None:
        """One line for the incident's timeline; the last one carries the outcome."""
        workflow.set_current_details(f"**{self._name}** for `{self._input.incident}`\n\n{text}")
        parent = self._input.incident_workflow_id
        if parent is None:
            return
        progress = RunbookProgress(
            workflow_id=workflow.info().workflow_id,
            text=text,
            outcome=result.outcome if result else None,
            verified=result.verified if result else False,
        )
        try:
            await workflow.get_external_workflow_handle(parent).signal("runbook_progress", progress)
        except FailureError as err:
            # The incident closed meanwhile: the runbook's own history still has everything.
            workflow.logger.info("incident %s not told: %s", parent, err)
