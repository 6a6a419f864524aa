"""Maintenance windows inside the incident: ask at the opening which windows hold it, hear when one starts or
ends, and say on the timeline what holds the pages and when the catch-up page goes out.

What holds the incident is decided by tocsin.maintenance.windows (pure); the escalation plan pages nobody
while it holds. Asking must never cost a page: if the registry cannot be asked, the incident pages as usual
and says so.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.maintenance import MaintenanceActivities
    from tocsin.maintenance import windows
    from tocsin.maintenance.contracts import MAX_PER_INCIDENT, LookupRequest, WindowNotice
    from tocsin.policy import escalation as plan
    from workflows.incident.core import IncidentCore

# The first page waits for this answer: a couple of quick attempts, then page as usual.
LOOKUP_TIMEOUT = timedelta(seconds=5)
LOOKUP_ATTEMPTS = 2


class Maintenance:
    def __init__(self, core: IncidentCore) -> None:
        self._core = core

    async def look_up(self) -> None:
        """At the opening: the one-off windows that hold this incident now (scheduled ones are in its policy)."""
        core, state = self._core, self._core.state
        if core.input.source == "cli":
            # A person asked for this incident: they get its pages, window or not.
            state.maintenance.exempt = True
            return
        try:
            # A local activity: one query in this worker, no task queue round trip, so the first page waits
            # milliseconds for the answer even in a storm of new incidents (the worker caches it for a second).
            answer = await workflow.execute_local_activity_method(
                MaintenanceActivities.lookup,
                LookupRequest(service=state.service, labels=state.labels),
                start_to_close_timeout=LOOKUP_TIMEOUT,
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(milliseconds=200), maximum_attempts=LOOKUP_ATTEMPTS
                ),
                summary="which maintenance windows hold it",
            )
        except ActivityError as err:
            core.record(
                "note", f"could not ask which maintenance windows hold it ({err.cause or err}); paging as usual"
            )
            return
        for window in answer.windows:
            windows.remember(state, window, MAX_PER_INCIDENT)

    def holds_now(self) -> bool:
        return windows.holding(self._core.state, self._core.policy, workflow.now()) is not None

    def noticed(self, notice: WindowNotice) -> None:
        """Signal `maintenance`: a window of this service started or ended (an end carries its new ends_at)."""
        state = self._core.state
        if state.status == "resolved" or not windows.matches(notice.window, state.service, state.labels):
            return
        windows.remember(state, notice.window, MAX_PER_INCIDENT)
        self._core.wake()

    def check(self) -> None:
        """Each pass of the loop, before the plan runs: record a window taking hold, and its end."""
        core, state = self._core, self._core.state
        record = state.maintenance
        now = workflow.now()
        window = windows.holding(state, core.policy, now)
        held = record.held
        if window is not None:
            if held is None or held.id != window.id or held.ends_at != window.ends_at:
                record.held, record.quiet_noted = window, False
                core.record("held", f"pages held by {window.describe()}")
            elif not windows.live(window, now) and not record.quiet_noted:
                record.quiet_noted = True
                core.record(
                    "held",
                    f"maintenance window {window.id} ended with no alert still firing: no catch-up page unless "
                    "one fires again",
                )
            return
        if held is None:
            return
        record.held = None
        if state.escalation.step < 0:
            record.released_at = now  # nobody was paged before the window: targets count from here
        if plan.paging_active(state, core.policy):
            cursor = state.escalation
            if cursor.step >= 0 and cursor.next_at is not None and cursor.next_at > now:
                # Paged before the window began: the catch-up page goes out now too, not at the next step's time.
                cursor.next_at = now
            storm = ", unless a storm holds it" if record.storm_deferred else ""
            core.record(
                "catch_up", f"maintenance window {held.id} ended with the incident still firing: catch-up page{storm}"
            )
        else:
            core.record("held", f"maintenance window {held.id} ended; the incident is {state.status}: no page")
