"""What the incident's updates and alert signals do: how humans (CLI, `temporal workflow update`, the receiver)
and alerts change it. workflows/incident/workflow.py declares the handlers and calls these.

Validators reject before anything reaches history; handlers change state, write the timeline and wake the
main loop, which does the I/O. A repeated `request_id` answers the first result again and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from tocsin.durations import format_duration
    from tocsin.incident import bounds
    from tocsin.incident.contracts import AlertEvent
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
        _Request,
    )
    from tocsin.policy import following
    from workflows.incident.core import IncidentCore

_MAX_REMEMBERED_REQUESTS = 200


class Requests:
    def __init__(self, core: IncidentCore) -> None:
        self._core = core
        self._state = core.state

    # --- helpers ---------------------------------------------------------------------------------------

    def seen(self, request: _Request) -> bool:
        return request.request_id is not None and request.request_id in self._state.handled_requests

    def _reject_if_resolved(self, request: _Request, verb: str) -> None:
        if not self.seen(request) and self._state.status == "resolved":
            raise ValueError(f"incident {self._state.key} is resolved; it can no longer be {verb}")

    def answer(self, request: _Request, message: str, change: Callable[[], None] | None = None) -> UpdateResult:
        if self.seen(request):
            assert request.request_id is not None
            message = self._state.handled_requests[request.request_id] + " (repeated request, not applied again)"
        else:
            if change is not None:
                change()
                if request.via == "pagerduty":
                    # PagerDuty told us: its incident already shows this, and telling it back would echo.
                    for follower in self._state.followers:
                        if follower.channel == "pagerduty":
                            follower.synced = following.shown("pagerduty", self._state)
                self._core.wake()
            if request.request_id is not None:
                self._state.handled_requests[request.request_id] = message
                while len(self._state.handled_requests) > _MAX_REMEMBERED_REQUESTS:
                    self._state.handled_requests.pop(next(iter(self._state.handled_requests)))
        state = self._state
        return UpdateResult(
            key=state.key,
            status=state.status,
            severity=state.severity,
            escalation_level=state.escalation_level,
            message=message,
        )

    def _mark_acknowledged(self, by: str) -> None:
        state = self._state
        if state.acknowledged_at is None:
            state.acknowledged_by = by
            state.acknowledged_at = workflow.now()
        if state.owner is None:
            state.owner = by
        state.next_escalation_at = None

    def _start_ack_clock(self) -> None:
        """An acknowledgement holds for the severity's `ack_timeout`, if it has one (tocsin.policy.escalation)."""
        timeout = self._core.policy.severity(self._state.severity).ack_timeout
        self._state.ack_deadline = workflow.now() + timeout if timeout else None

    # --- acknowledge -----------------------------------------------------------------------------------

    def acknowledge(self, request: AcknowledgeRequest) -> UpdateResult:
        state = self._state
        if state.status != "triggered":
            return self.answer(request, f"already {state.status} (acknowledged by {state.acknowledged_by})")

        def change() -> None:
            self._mark_acknowledged(request.by)
            state.status = "acknowledged"
            self._start_ack_clock()
            self._core.record("acknowledged", f"acknowledged by {request.who()}; paging stopped", by=request.by)

        return self.answer(request, f"acknowledged by {request.by}", change)

    def validate_acknowledge(self, request: AcknowledgeRequest) -> None:
        self._reject_if_resolved(request, "acknowledged")

    # --- escalate --------------------------------------------------------------------------------------

    def escalate(self, request: EscalateRequest) -> UpdateResult:
        def change() -> None:
            self._state.escalation.pending_manual += 1
            reason = f": {request.reason}" if request.reason else ""
            self._core.record("escalated", f"escalated by {request.who()}{reason}", by=request.by)
            if self._state.paging_held:
                # A person asked for this one: it leaves the storm's cover and pages on its own from now.
                self._state.paging_held = False
                self._core.record("storm", f"paging resumed by {request.by}: this incident now pages on its own")

        return self.answer(request, f"escalation to level {self._state.escalation_level + 1} requested", change)

    def validate_escalate(self, request: EscalateRequest) -> None:
        self._reject_if_resolved(request, "escalated")
        if not self.seen(request) and self._state.escalation.exhausted:
            raise ValueError(f"incident {self._state.key} has already been escalated past the last level")

    # --- mitigate --------------------------------------------------------------------------------------

    def mitigate(self, request: MitigateRequest) -> UpdateResult:
        state = self._state
        if state.status == "mitigated":
            return self.answer(request, "already mitigated")

        def change() -> None:
            self._mark_acknowledged(request.by)
            state.status = "mitigated"
            state.mitigated_at = workflow.now()
            summary = f": {request.summary}" if request.summary else ""
            self._core.record("mitigated", f"mitigated by {request.who()}{summary}", by=request.by)

        return self.answer(request, f"mitigated by {request.by}", change)

    def validate_mitigate(self, request: MitigateRequest) -> None:
        self._reject_if_resolved(request, "mitigated")

    # --- resolve ---------------------------------------------------------------------------------------

    def resolve(self, request: ResolveRequest) -> UpdateResult:
        state = self._state

        def change() -> None:
            self._mark_acknowledged(request.by)
            state.status = "resolved"
            state.resolved_by = request.by
            state.resolved_at = workflow.now()
            state.resolution_summary = request.summary or None
            summary = f": {request.summary}" if request.summary else ""
            self._core.record("resolved", f"resolved by {request.who()}{summary}", by=request.by)

        return self.answer(request, f"resolved by {request.by}", change)

    def validate_resolve(self, request: ResolveRequest) -> None:
        self._reject_if_resolved(request, "resolved again")

    # --- annotate --------------------------------------------------------------------------------------

    def annotate(self, request: AnnotateRequest) -> UpdateResult:
        return self.answer(request, "note added", lambda: self._core.record("note", request.text, by=request.by))

    def validate_annotate(self, request: AnnotateRequest) -> None:
        self._reject_if_resolved(request, "annotated")

    # --- set_severity ----------------------------------------------------------------------------------

    def set_severity(self, request: SetSeverityRequest) -> UpdateResult:
        state = self._state
        if request.severity == state.severity:
            return self.answer(request, f"severity already {state.severity}")

        def change() -> None:
            old = state.severity
            state.severity = request.severity
            reason = f": {request.reason}" if request.reason else ""
            self._core.record("severity_changed", f"{old} → {request.severity} by {request.by}{reason}", by=request.by)

        return self.answer(request, f"severity set to {request.severity}", change)

    def validate_set_severity(self, request: SetSeverityRequest) -> None:
        self._reject_if_resolved(request, "re-classified")
        known = self._core.policy.incident_classification.severity_levels
        if request.severity not in known:
            raise ValueError(f"unknown severity {request.severity!r} (known: {', '.join(known)})")

    # --- snooze and take ---------------------------------------------------------------------------------

    def snooze(self, request: SnoozeRequest) -> UpdateResult:
        state = self._state
        until = workflow.now() + request.duration

        def change() -> None:
            state.snoozed_until = until
            self._core.record(
                "snoozed",
                f"paging snoozed by {request.who()} for {format_duration(request.duration)}, until {until:%H:%M:%S}Z; "
                "management escalation goes on",
                by=request.by,
            )

        return self.answer(request, f"paging snoozed until {until:%H:%M:%S}Z", change)

    def validate_snooze(self, request: SnoozeRequest) -> None:
        self._reject_if_resolved(request, "snoozed")
        if not self.seen(request) and self._state.status != "triggered":
            raise ValueError(f"incident {self._state.key} is {self._state.status}: nothing is paging to snooze")

    def take(self, request: TakeRequest) -> UpdateResult:
        state = self._state
        if state.owner == request.by:
            return self.answer(request, f"{request.by} already owns it")

        def change() -> None:
            before = f" from {state.owner}" if state.owner else ""
            state.owner = None  # so _mark_acknowledged makes `by` the owner
            self._mark_acknowledged(request.by)
            state.owner = request.by
            if state.status == "triggered":
                state.status = "acknowledged"
                self._start_ack_clock()
            self._core.record("owner", f"{request.who()} took over{before}", by=request.by)

        return self.answer(request, f"{request.by} owns it now", change)

    def validate_take(self, request: TakeRequest) -> None:
        self._reject_if_resolved(request, "taken over")

    # --- alerts ----------------------------------------------------------------------------------------

    def take_alerts(self, events: list[AlertEvent]) -> None:
        """Attach alerts. Repeats fold into one record; only changes reach the timeline."""
        state = self._state
        if state.status == "resolved":
            return
        now = workflow.now()
        for kind, text in bounds.take_alerts(state, events, now, self._core.policy.limits.alerts_per_incident):
            self._core.record(kind, text)
        quiet = bounds.all_quiet(state)
        before = state.alerts_resolved_at
        if not quiet:
            state.alerts_resolved_at = None
        elif state.alerts_resolved_at is None:
            state.alerts_resolved_at = now
        # Re-plan only when the auto-resolve timer starts or is cancelled: waking on every repeat of a firing
        # alert would cost a timer restart per alert in a storm.
        if state.alerts_resolved_at != before:
            self._core.wake()
