"""StormGuardWorkflow: the one place that counts new incidents, so a burst of them pages once.

"More than N new incidents within a window" is state shared by every incident. A long-lived workflow is its
durable, serialised home (the same pattern as the runbook guard): each new incident asks through the `admit`
update, so the answer is synchronous and every decision is in this workflow's history. The decisions are
tocsin.storm's pure functions.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from tocsin import storm
    from tocsin.storm_models import AdmitAnswer, GuardAdmit, StormGuardState

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

    @workflow.update(name="admit")
    def admit(self, request: GuardAdmit) -> AdmitAnswer:
        return storm.admit(self._state, request, workflow.now())

    @workflow.query(name="storms")
    def storms(self) -> StormGuardState:
        return self._state
