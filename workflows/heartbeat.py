"""One heartbeat: a durable timer per name that opens an incident when its pings stop, and resolves it when they
come back.

Armed by its first ping (the receiver's signal-with-start). Each ping moves the deadline to `last ping +
interval + grace`; when the deadline passes, the `heartbeat_missed` activity opens "Heartbeat <name> missed"
(key `heartbeat-<name>-<n>`), and the next ping resolves it. A ping is a signal, so the history grows with
every one: the workflow continues as new every PINGS_PER_RUN pings or when the server suggests it, carrying
only its small state.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from tocsin.heartbeat.contracts import (
        HeartbeatInput,
        HeartbeatStatus,
        MissedRequest,
        Ping,
        RecoveredRequest,
        heartbeat_incident_key,
    )

# A few thousand events a run at most: replaying a worker's cache miss stays cheap.
PINGS_PER_RUN = 500
ACTIVITY_OPTIONS = workflow.ActivityConfig(
    start_to_close_timeout=timedelta(seconds=30),
    # Bounded: Temporal's default retries forever. The missed page must not give up early, so it gets many.
    retry_policy=RetryPolicy(maximum_attempts=20, maximum_interval=timedelta(minutes=1)),
)


@workflow.defn(name="HeartbeatWorkflow")
class HeartbeatWorkflow:
    @workflow.init
    def __init__(self, inp: HeartbeatInput) -> None:
        # The ping of a signal-with-start is handled before run() starts: the state must exist already.
        self.state = inp.model_copy()
        self.pings_this_run = 0

    @workflow.signal(name="ping")
    def ping(self, ping: Ping) -> None:
        # Duplicates (at-least-once signals, a sender's retry) only move the deadline: harmless.
        self.state.pings += 1
        self.state.last_ping = workflow.now()
        self.pings_this_run += 1

    @workflow.query(name="status")
    def status(self) -> HeartbeatStatus:
        s = self.state
        due = s.last_ping + s.deadline if s.last_ping else None
        state = "missed" if s.open_key else ("ok" if s.last_ping else "waiting")
        return HeartbeatStatus(
            name=s.name,
            state=state,
            last_ping=s.last_ping,
            due=due,
            pings=s.pings,
            misses=s.misses,
            open_incident=s.open_key,
        )

    @workflow.run
    async def run(self, inp: HeartbeatInput) -> None:
        s = self.state
        workflow.set_current_details(self._details())
        while True:
            await workflow.wait_condition(lambda: s.last_ping is not None)
            seen = s.pings
            if s.open_key is None and not await self._pinged_before_deadline(seen):
                await self._missed()
            if s.open_key is not None:
                await workflow.wait_condition(self._pinged_since(seen))
                await self._recovered()
            if self.pings_this_run >= PINGS_PER_RUN or workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(self.state)

    async def _pinged_before_deadline(self, seen: int) -> bool:
        s = self.state
        assert s.last_ping is not None
        # From the last ping, not from now: a continued run or a slow task does not stretch the deadline.
        remaining = s.last_ping + s.deadline - workflow.now()
        if remaining <= timedelta(0):
            return s.pings != seen
        try:
            await workflow.wait_condition(
                self._pinged_since(seen), timeout=remaining, timeout_summary=f"heartbeat {s.name} deadline"
            )
        except TimeoutError:
            return False
        return True

    def _pinged_since(self, seen: int) -> Callable[[], bool]:
        return lambda: self.state.pings != seen

    async def _missed(self) -> None:
        s = self.state
        s.misses += 1
        key = heartbeat_incident_key(s.name, s.misses)
        request = MissedRequest(
            name=s.name,
            key=key,
            service=s.service,
            severity=s.severity,
            deadline=s.deadline,
            last_ping=s.last_ping,
            missed_at=workflow.now(),
        )
        await workflow.execute_activity(
            "heartbeat_missed", request, result_type=bool, **workflow.ActivityConfig(**ACTIVITY_OPTIONS, summary=key)
        )
        s.open_key = key
        workflow.set_current_details(self._details())

    async def _recovered(self) -> None:
        s = self.state
        assert s.open_key is not None
        request = RecoveredRequest(name=s.name, key=s.open_key)
        await workflow.execute_activity(
            "heartbeat_recovered",
            request,
            result_type=bool,
            **workflow.ActivityConfig(**ACTIVITY_OPTIONS, summary=f"resolve {s.open_key}"),
        )
        s.open_key = None
        workflow.set_current_details(self._details())

    def _details(self) -> str:
        s = self.state
        every = f"every {s.interval} (grace {s.grace})"
        if s.open_key:
            return f"**missed**: incident `{s.open_key}` is open until the next ping; {every}"
        return f"pings {every} for service `{s.service}`; {s.misses} missed so far"
