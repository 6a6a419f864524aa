"""RunbookWorkflow: one runbook run for one incident (`runbook-<key>-<n>`), every step on the record.

Pure orchestration over a plan rendered before the run (tocsin.runbooks.plan): the guard grants the
service, each step is an activity (or a timer, or a person's decision), and when a step fails the steps
already done are compensated in reverse order. The incident hears of each step through the signal
`runbook_progress`, and of the outcome: verified → mitigated; failed → escalated.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from activities.runbook import GuardActivities, RunbookActivities
    from tocsin.roster import resolve as resolve_target
    from tocsin.runbooks.contracts import (
        ApproveStepRequest,
        RunbookInput,
        RunbookProgress,
        RunbookResult,
        StepOutcome,
        StepRecord,
        preflight_of,
    )
    from tocsin.runbooks.guard_models import GUARD_WORKFLOW_ID, AcquireAnswer, AcquireRequest, ReleaseRequest
    from tocsin.runbooks.planned import PlannedApproval, PlannedStep
    from workflows._runbook_steps import StepFailed, StepRunner

# How long the guard holds a service for one run: longer than any sane runbook, short enough to recover.
LEASE = timedelta(hours=2)
WAIT_POLL = timedelta(seconds=30)


@workflow.defn(name="RunbookWorkflow")
class RunbookWorkflow:
    @workflow.init
    def __init__(self, inp: RunbookInput) -> None:
        self._input = inp
        self._records: list[StepRecord] = []
        self._decisions: dict[str, ApproveStepRequest] = {}
        self._waiting_for: PlannedApproval | None = None

    @workflow.run
    async def run(self, inp: RunbookInput) -> RunbookResult:
        plan = inp.plan
        if plan.violations:
            return await self._finish("refused", "; ".join(plan.violations))
        preflight = await workflow.execute_activity_method(
            RunbookActivities.preflight,
            preflight_of(plan),
            start_to_close_timeout=timedelta(seconds=30),
            summary="what this worker can do",
        )
        if preflight.missing:
            return await self._finish("refused", "not configured on the worker: " + "; ".join(preflight.missing))
        answer = await self._acquire()
        if not answer.granted:
            return await self._finish("refused", answer.reason)
        try:
            return await self._execute()
        finally:
            await self._release()

    async def _acquire(self) -> AcquireAnswer:
        plan, limit = self._input.plan, self._input.plan.guardrails.rate_limit
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
                GuardActivities.acquire,
                request,
                start_to_close_timeout=timedelta(seconds=30),
                summary=f"guard: {plan.service} for {plan.runbook}",
            )
            waiting = plan.guardrails.concurrency == "wait" and answer.held_by is not None
            if answer.granted or not waiting or workflow.now() + WAIT_POLL > deadline:
                return answer
            await self._tell(f"{plan.runbook} waits: {answer.reason}")
            await workflow.sleep(WAIT_POLL, summary=f"waiting for {plan.service} to be free")

    async def _release(self) -> None:
        guard = workflow.get_external_workflow_handle(GUARD_WORKFLOW_ID)
        try:
            release = ReleaseRequest(service=self._input.plan.service, holder=workflow.info().workflow_id)
            await guard.signal("release", release)
        except FailureError as err:
            # The hold lapses with its lease; nothing else is left to do.
            workflow.logger.warning("runbook guard not told of the release: %s", err)

    async def _execute(self) -> RunbookResult:
        plan = self._input.plan
        runner = StepRunner(self._input, self._approve)
        await self._tell(f"{plan.runbook} started by {self._input.requested_by}: {len(plan.steps)} steps")
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
        return (
            ("approved", f"approved by {decision.by}{note}")
            if decision.approve
            else (
                "rejected",
                f"rejected by {decision.by}{note}",
            )
        )

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
        if not self._may_approve(waiting, request.by):
            raise ValueError(f"{request.by!r} is not an approver of {request.step} ({', '.join(waiting.approvers)})")

    def _may_approve(self, step: PlannedApproval, who: str) -> bool:
        """An approver named as such, or a member of an approving team, or on call now for an approving rotation."""
        if who in step.approvers:
            return True
        now = workflow.now()
        for approver in step.approvers:
            resolved = resolve_target(self._input.roster, approver, now)
            if any(person.id == who for person in resolved.people):
                return True
        return False

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
        await self._tell(f"{self._input.plan.runbook} {what} {step} ({action}): {outcome}: {detail}")

    async def _finish(self, outcome: str, reason: str, verified: bool = False) -> RunbookResult:
        result = RunbookResult.model_validate(
            {
                "runbook": self._input.plan.runbook,
                "outcome": outcome,
                "reason": reason,
                "verified": verified,
                "steps": self._records,
            }
        )
        await self._tell(f"{result.runbook} {outcome}: {reason}", result)
        return result

    async def _tell(self, text: str, result: RunbookResult | None = None) -> None:
        """One line for the incident's timeline; the last one carries the outcome."""
        workflow.set_current_details(f"**{self._input.plan.runbook}** for `{self._input.incident}`\n\n{text}")
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
