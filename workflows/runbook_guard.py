"""RunbookGuardWorkflow: the one place that knows which service a runbook is acting on, and how often each runbook ran.

Two guardrails need state shared by every incident: "one runbook per service at a time" and "at most N runs
of a runbook per window". A long-lived workflow is the durable, serialised home for both (Temporal's mutex
pattern): runbook runs ask through the `acquire` update (so the answer is synchronous and the decision is in
this workflow's history) and give back through the `release` signal. A hold carries a lease, so a run that
disappears without releasing (terminated by an operator) cannot block its service forever.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from tocsin.durations import format_duration
    from tocsin.runbook.guard_contracts import AcquireAnswer, AcquireRequest, GuardState, Hold, ReleaseRequest

# Start times older than this only grow the carried state; no sensible rate-limit window is longer.
STARTS_KEPT = timedelta(days=7)


@workflow.defn(name="RunbookGuardWorkflow")
class RunbookGuardWorkflow:
    @workflow.init
    def __init__(self, state: GuardState) -> None:
        self._state = state

    @workflow.run
    async def run(self, state: GuardState) -> None:
        # Idle until the history is long enough to roll over; every decision happens in the handlers.
        await workflow.wait_condition(lambda: workflow.info().is_continue_as_new_suggested())
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(self._pruned())

    @workflow.update(name="acquire")
    def acquire(self, request: AcquireRequest) -> AcquireAnswer:
        now = workflow.now()
        hold = self._state.holds.get(request.service)
        if hold is not None and hold.holder == request.holder:
            return AcquireAnswer(granted=True, reason="already held by this run", held_by=hold.holder)
        if hold is not None and hold.until > now:
            return AcquireAnswer(
                granted=False,
                reason=f"{hold.runbook} is already acting on {request.service} ({hold.holder}, "
                f"since {hold.since:%H:%M:%S}Z)",
                held_by=hold.holder,
            )
        starts = self._state.starts.setdefault(request.runbook, [])
        if request.max_runs is not None and request.per is not None:
            recent = [t for t in starts if t > now - request.per]
            if len(recent) >= request.max_runs:
                return AcquireAnswer(
                    granted=False,
                    reason=f"rate limit: {request.runbook} ran {len(recent)} times in the last "
                    f"{format_duration(request.per)} (at most {request.max_runs})",
                )
        self._state.holds[request.service] = Hold(
            holder=request.holder, runbook=request.runbook, since=now, until=now + request.lease
        )
        starts.append(now)
        return AcquireAnswer(granted=True, reason=f"{request.service} is {request.runbook}'s until released")

    @workflow.signal(name="release")
    def release(self, request: ReleaseRequest) -> None:
        hold = self._state.holds.get(request.service)
        if hold is not None and hold.holder == request.holder:
            del self._state.holds[request.service]

    @workflow.query(name="holds")
    def holds(self) -> GuardState:
        return self._state

    def _pruned(self) -> GuardState:
        now = workflow.now()
        horizon = now - STARTS_KEPT
        return GuardState(
            holds={s: h for s, h in self._state.holds.items() if h.until > now},
            starts={r: [t for t in ts if t > horizon] for r, ts in self._state.starts.items()},
        )
