"""MaintenanceWorkflow: the durable registry of one-off maintenance windows (id `tocsin-maintenance`).

People start and end windows with updates (validated before anything is written); the `windows` query lists
them; the Web UI shows them in the workflow's details. When a window starts or ends, the `maintenance_notify`
activity tells the open incidents of its service, so one already paging stops, and one held pages its
catch-up at once when the window is ended early. A window that runs out needs no message to its incidents:
each wakes on its own at the window's end, but is told anyway, so the two paths never disagree.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.maintenance import MaintenanceActivities
    from tocsin.maintenance.contracts import (
        MAX_ACTIVE,
        EndWindow,
        MaintenanceState,
        NotifyRequest,
        StartWindow,
        Window,
        WindowNotice,
    )

# A new window's notice goes out again this much later (see `again`).
TELL_AGAIN_AFTER = timedelta(seconds=10)
# Updates a run takes before it continues as new, carrying only its open windows.
UPDATES_PER_RUN = 200
NOTIFY = workflow.ActivityConfig(
    start_to_close_timeout=timedelta(minutes=2),
    retry_policy=RetryPolicy(maximum_attempts=5, maximum_interval=timedelta(seconds=30)),
)


@workflow.defn(name="MaintenanceWorkflow")
class MaintenanceWorkflow:
    @workflow.init
    def __init__(self, state: MaintenanceState) -> None:
        # Updates in the first workflow task run before run() starts: the state must exist already.
        self.state = state.model_copy(deep=True)
        self.notices: list[WindowNotice] = []
        # Start notices sent once more a little later: an incident that opened just before a window started may
        # not be in visibility yet, and its lookup may have used a registry answer a second old.
        self.again: list[tuple[datetime, WindowNotice]] = []
        self.updates_this_run = 0

    @workflow.update(name="start_window")
    def start_window(self, request: StartWindow) -> Window:
        now = workflow.now()
        window = Window(
            id=f"mw-{workflow.uuid4().hex[:8]}",
            service=request.service,
            labels=dict(request.labels),
            reason=request.reason,
            by=request.by,
            starts_at=now,
            ends_at=now + request.duration,
        )
        self.state.windows.append(window)
        self.state.started += 1
        notice = WindowNotice(window=window)
        self._changed(notice)
        self.again.append((now + TELL_AGAIN_AFTER, notice))
        return window

    @start_window.validator
    def _validate_start(self, request: StartWindow) -> None:
        if len(self.state.windows) >= MAX_ACTIVE:
            raise ValueError(f"{MAX_ACTIVE} maintenance windows are open already: end one first")

    @workflow.update(name="end_window")
    def end_window(self, request: EndWindow) -> Window:
        window = next(w for w in self.state.windows if w.id == request.id)
        ended = window.model_copy(update={"ends_at": workflow.now(), "ended_by": request.by})
        self.state.windows.remove(window)
        self.state.ended += 1
        self._changed(WindowNotice(window=ended, ended=True))
        return ended

    @end_window.validator
    def _validate_end(self, request: EndWindow) -> None:
        if request.id.startswith("policy:"):
            raise ValueError(f"{request.id} is declared in the policy: it ends on its schedule (edit the policy)")
        if not any(w.id == request.id for w in self.state.windows):
            raise ValueError(f"no open maintenance window {request.id} (`tocsin maintenance list` shows them)")

    @workflow.query(name="windows")
    def windows(self) -> MaintenanceState:
        return self.state

    def _changed(self, notice: WindowNotice) -> None:
        self.notices.append(notice)
        self.updates_this_run += 1
        workflow.set_current_details(self._details())

    @workflow.run
    async def run(self, state: MaintenanceState) -> None:
        workflow.set_current_details(self._details())
        while True:
            self._expire()
            self._tell_again()
            while self.notices:
                await self._notify(self.notices.pop(0))
            roll_over = self.updates_this_run >= UPDATES_PER_RUN or workflow.info().is_continue_as_new_suggested()
            # Only with nothing left to tell: what is pending lives in this run, not in the carried state.
            if roll_over and not self.again:
                await workflow.wait_condition(workflow.all_handlers_finished)
                if not self.notices:
                    workflow.continue_as_new(self.state)
                continue
            wakes = [w.ends_at for w in self.state.windows] + [at for at, _ in self.again]
            timeout = max(min(wakes) - workflow.now(), timedelta(0)) if wakes else None
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: bool(self.notices), timeout=timeout, timeout_summary="the next window's end"
                )

    def _tell_again(self) -> None:
        now = workflow.now()
        open_ids = {w.id for w in self.state.windows}
        due = [notice for at, notice in self.again if at <= now and notice.window.id in open_ids]
        self.again = [(at, notice) for at, notice in self.again if at > now]
        self.notices.extend(due)

    def _expire(self) -> None:
        now = workflow.now()
        for window in [w for w in self.state.windows if w.ends_at <= now]:
            self.state.windows.remove(window)
            self.state.ended += 1
            self._changed(WindowNotice(window=window, ended=True))

    async def _notify(self, notice: WindowNotice) -> None:
        what = "ended" if notice.ended else "started"
        try:
            await workflow.execute_activity_method(
                MaintenanceActivities.notify,
                NotifyRequest(notice=notice),
                **workflow.ActivityConfig(**NOTIFY, summary=f"{notice.window.id} {what}: tell its incidents"),
            )
        except ActivityError as err:
            # The incidents still wake at the window's end on their own; an early end reaches them late.
            workflow.logger.warning("could not tell incidents that %s %s: %s", notice.window.id, what, err.cause)

    def _details(self) -> str:
        if not self.state.windows:
            return f"No maintenance window is open. {self.state.started} started, {self.state.ended} ended so far."
        lines = ["| window | service | labels | until | by | reason |", "|---|---|---|---|---|---|"]
        for w in self.state.windows:
            labels = ", ".join(f"{k}={v}" for k, v in w.labels.items()) or "—"
            reason = w.reason.replace("|", "/")
            lines.append(f"| {w.id} | {w.service} | {labels} | {w.ends_at:%Y-%m-%d %H:%M}Z | {w.by} | {reason} |")
        return "\n".join(lines)
