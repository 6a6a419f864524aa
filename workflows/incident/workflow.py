"""IncidentWorkflow: one durable workflow per incident, from the first page to the post-mortem hand-off.

Pure orchestration. This module holds the main loop and declares every signal, update and query; each part
of the incident (workflows/incident/*.py) does its share on the shared IncidentCore. Handlers only change
state and wake the loop, which does the I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from tocsin.durations import format_elapsed
    from tocsin.incident import bounds
    from tocsin.incident.contracts import AlertBatch, IncidentInput, IncidentState
    from tocsin.incident.updates import (
        AcknowledgeRequest,
        AnnotateRequest,
        EscalateRequest,
        MitigateRequest,
        ResolveRequest,
        SetSeverityRequest,
        SnoozeRequest,
        TakeRequest,
        UpdateResult,
    )
    from tocsin.maintenance.contracts import WindowNotice
    from tocsin.policy import escalation as plan
    from tocsin.runbook.contracts import RunbookProgress, RunRunbookRequest
    from tocsin.storm.contracts import AdmitAnswer, StormMembers
    from workflows.incident.closing import close_incident
    from workflows.incident.core import IncidentCore
    from workflows.incident.deliveries import Deliveries
    from workflows.incident.escalation import Escalation
    from workflows.incident.maintenance import Maintenance
    from workflows.incident.requests import Requests
    from workflows.incident.response import Response
    from workflows.incident.runbooks import Runbooks
    from workflows.incident.storm import StormMembership

# Continue-as-new before the history nears Temporal's warnings (10 MB), whatever the event count says: a few
# large alert payloads weigh more than thousands of small events.
HISTORY_BYTES = 4 * 1024 * 1024
# What continue-as-new may carry at most; far under the 2 MiB payload limit, and what a `status` query returns.
CARRIED_BYTES = 768 * 1024


def _waited(state: IncidentState) -> str:
    """'; opened 42s after the first alert' when the workflow's first task came a second or more after the alert
    arrived (a busy worker, a queue): that wait is part of the response, and the timeline says so."""
    waited = state.opened_at - state.clock_start
    return f"; opened {format_elapsed(waited)} after the first alert" if waited >= timedelta(seconds=1) else ""


@workflow.defn(name="IncidentWorkflow")
class IncidentWorkflow:
    @workflow.init
    def __init__(self, inp: IncidentInput) -> None:
        core = self._core = IncidentCore(inp)
        self._deliveries = Deliveries(core)
        self._requests = Requests(core)
        self._escalation = Escalation(core, self._deliveries)
        self._storm = StormMembership(core, self._deliveries)
        self._runbooks = Runbooks(core, self._requests)
        self._response = Response(core, self._deliveries, self._runbooks)
        self._maintenance = Maintenance(core)
        if inp.carried is None:
            # Here, not in run: a signal or update in the first workflow task runs its handler before the run
            # method starts, and the timeline must still begin with the opening.
            flow = f", response workflow {inp.response_workflow}" if inp.response_workflow else ""
            core.record("opened", f"{inp.title} (from {inp.source}{_waited(core.state)})")
            core.record("triaged", f"severity {inp.severity}{flow}")

    @workflow.run
    async def run(self, inp: IncidentInput) -> IncidentState:
        core = self._core
        state = core.state
        if inp.carried is None:
            # Before anything pages: a maintenance window may hold this incident from its first moment.
            await self._maintenance.look_up()
        if inp.carried is None and not inp.storm and core.policy.intake.storm.enabled:
            if self._maintenance.holds_now():
                state.maintenance.storm_deferred = True
            else:
                await self._storm.admit()
        while state.status != "resolved":
            self._maintenance.check()
            if state.maintenance.storm_deferred and state.maintenance.held is None and not core.resolved():
                # Released by its window: a burst of catch-up pages is a storm like any other.
                state.maintenance.storm_deferred = False
                await self._storm.admit()
            await self._escalation.run_due()
            await self._storm.summarize()
            if not core.resolved():
                await self._deliveries.sync_followers()
            await self._runbooks.start_queued()
            if core.resolved():
                # Resolved by the plan (quiet alerts) or by an update that landed while an activity ran.
                break
            if not state.responded and not state.paging_held and state.maintenance.held is None:
                state.responded = True
                await self._response.link_previous()
                await self._response.respond()
                continue
            state.next_escalation_at = plan.next_page_at(state, core.policy)
            core.publish()
            if self._roll_over_due():
                await workflow.wait_condition(workflow.all_handlers_finished)
                bounds.shrink(state, CARRIED_BYTES)
                workflow.continue_as_new(inp.model_copy(update={"carried": state}))
            await self._sleep_until_due()
        await close_incident(core, self._deliveries)
        core.publish()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return state

    def _roll_over_due(self) -> bool:
        info = workflow.info()
        return info.is_continue_as_new_suggested() or info.get_current_history_size() > HISTORY_BYTES

    async def _sleep_until_due(self) -> None:
        core = self._core
        now = workflow.now()
        wake_at = self._escalation.next_wakeup()
        # A floor of one second only when the plan says "now" (or earlier) for something it then did not do:
        # the incident would spin; it waits a second instead. Anything still ahead, however close, is waited
        # for exactly: a page due 3 ms after a target's wake-up goes out on time, not a second late.
        timeout = (wake_at - now if wake_at > now else timedelta(seconds=1)) if wake_at else None
        core.woken = False
        summary = f"until {wake_at:%H:%M:%S}Z or a human acts" if wake_at else "until a human acts"
        with contextlib.suppress(asyncio.TimeoutError):
            # Also wake when the server suggests continue-as-new: a flood of alert signals alone must be
            # able to roll the history over, even while the plan has nothing due for hours.
            await workflow.wait_condition(
                lambda: core.woken or self._roll_over_due(),
                timeout=timeout,
                timeout_summary=summary,
            )

    # --- updates: people act on the incident -------------------------------------------------------------

    @workflow.update(name="acknowledge")
    def acknowledge(self, request: AcknowledgeRequest) -> UpdateResult:
        return self._requests.acknowledge(request)

    @acknowledge.validator
    def _validate_acknowledge(self, request: AcknowledgeRequest) -> None:
        self._requests.validate_acknowledge(request)

    @workflow.update(name="escalate")
    def escalate(self, request: EscalateRequest) -> UpdateResult:
        return self._requests.escalate(request)

    @escalate.validator
    def _validate_escalate(self, request: EscalateRequest) -> None:
        self._requests.validate_escalate(request)

    @workflow.update(name="mitigate")
    def mitigate(self, request: MitigateRequest) -> UpdateResult:
        return self._requests.mitigate(request)

    @mitigate.validator
    def _validate_mitigate(self, request: MitigateRequest) -> None:
        self._requests.validate_mitigate(request)

    @workflow.update(name="resolve")
    def resolve(self, request: ResolveRequest) -> UpdateResult:
        return self._requests.resolve(request)

    @resolve.validator
    def _validate_resolve(self, request: ResolveRequest) -> None:
        self._requests.validate_resolve(request)

    @workflow.update(name="annotate")
    def annotate(self, request: AnnotateRequest) -> UpdateResult:
        return self._requests.annotate(request)

    @annotate.validator
    def _validate_annotate(self, request: AnnotateRequest) -> None:
        self._requests.validate_annotate(request)

    @workflow.update(name="set_severity")
    def set_severity(self, request: SetSeverityRequest) -> UpdateResult:
        return self._requests.set_severity(request)

    @set_severity.validator
    def _validate_set_severity(self, request: SetSeverityRequest) -> None:
        self._requests.validate_set_severity(request)

    @workflow.update(name="snooze")
    def snooze(self, request: SnoozeRequest) -> UpdateResult:
        return self._requests.snooze(request)

    @snooze.validator
    def _validate_snooze(self, request: SnoozeRequest) -> None:
        self._requests.validate_snooze(request)

    @workflow.update(name="take")
    def take(self, request: TakeRequest) -> UpdateResult:
        return self._requests.take(request)

    @take.validator
    def _validate_take(self, request: TakeRequest) -> None:
        self._requests.validate_take(request)

    @workflow.update(name="run_runbook")
    def run_runbook(self, request: RunRunbookRequest) -> UpdateResult:
        return self._runbooks.run(request)

    @run_runbook.validator
    def _validate_run_runbook(self, request: RunRunbookRequest) -> None:
        self._runbooks.validate_run(request)

    # --- signals: alerts, the storm guard, runbooks -----------------------------------------------------

    @workflow.signal(name="alerts")
    def alerts(self, batch: AlertBatch) -> None:
        """Attach every alert of one received payload at once (the receiver's signal-with-start). Repeats fold
        into one record per fingerprint; only changes reach the timeline."""
        self._requests.take_alerts(batch.events)

    @workflow.signal(name="maintenance")
    def maintenance(self, notice: WindowNotice) -> None:
        """The maintenance registry: a window of this incident's service started or ended."""
        self._maintenance.noticed(notice)

    @workflow.signal(name="storm_decision")
    def storm_decision(self, answer: AdmitAnswer) -> None:
        self._storm.decided(answer)

    @workflow.signal(name="storm_members")
    def storm_members(self, batch: StormMembers) -> None:
        self._storm.joined(batch)

    @workflow.signal(name="runbook_progress")
    def runbook_progress(self, progress: RunbookProgress) -> None:
        self._runbooks.progress(progress)

    # --- query -------------------------------------------------------------------------------------------

    @workflow.query(name="status")
    def status(self) -> IncidentState:
        return self._core.state
