"""StormGuardWorkflow: the one place that counts new incidents, so a burst of them pages once.

"More than N new incidents within a window" is state shared by every incident. A long-lived workflow is its
durable, serialised home. Each new incident asks with the `admit` signal and is answered with the
`storm_decision` signal, so every decision is in this workflow's history. Signals, not updates: a burst of
hundreds of updates into one workflow gets them aborted and retried by the server (measured: 1,705 retried
admissions for 200 incidents), while signals are taken in batches, one workflow task for many. The
decisions are tocsin.storm.consolidation's pure functions.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from tocsin.storm import consolidation as storm
    from tocsin.storm.contracts import GuardAdmit, StormGuardState

# Continue-as-new well before the history limits: every admission is an update in this history.
HISTORY_BYTES = 4 * 1024 * 1024


@workflow.defn(name="StormGuardWorkflow")
class StormGuardWorkflow:
    @workflow.init
    def __init__(self, state: StormGuardState) -> None:
        self._state = state

    @workflow.run
    async def run(self, state: StormGuardState) -> None:
        # Idle until the history is long enough to roll over; every decision happens in the handler.
        await workflow.wait_condition(
            lambda: (
                workflow.info().is_continue_as_new_suggested()
                or workflow.info().get_current_history_size() > HISTORY_BYTES
            )
        )
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(self._state)

    @workflow.signal(name="admit")
    async def admit(self, request: GuardAdmit) -> None:
        # Decided before any await: the answers follow the order the signals arrived in.
        answer = storm.admit(self._state, request, workflow.now())
        try:
            await workflow.get_external_workflow_handle(request.reply_to).signal("storm_decision", answer)
        except FailureError as err:
            # The incident is gone (resolved and closed, or terminated): nobody is waiting for the answer.
            workflow.logger.info("storm decision for %s not delivered: %s", request.reply_to, err)

    @workflow.query(name="storms")
    def storms(self) -> StormGuardState:
        return self._state
