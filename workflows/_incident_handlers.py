"""The incident's updates and its query: how humans (CLI, `temporal workflow update`, the receiver) act on it.

Validators reject before anything reaches history; handlers change state, write the timeline and wake the
main loop, which does the I/O. A repeated `request_id` answers the first result again and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from tocsin import incident_bounds as bounds
    from tocsin.models import AlertBatch, AlertEvent, IncidentState
    from tocsin.policy.models import Policy
    from tocsin.updates import (
        AcknowledgeRequest,
        AnnotateRequest,
        EscalateRequest,
        MitigateRequest,
        ResolveRequest,
        SetSeverityRequest,
        UpdateResult,
        _Request,
    )

_MAX_REMEMBERED_REQUESTS = 200


class IncidentHandlers:
    _state: IncidentState
    _policy: Policy
    _wake: bool
    _auto_resolve: bool
    _wake_on_every_alert: bool

    def _record(self, kind: str, text: str, by: str | None = None) -> None:
        raise NotImplementedError

    # --- helpers ---------------------------------------------------------------------------------------

    def _seen(self, request: _Request) -> bool:
        return request.request_id is not None and request.request_id in self._state.handled_requests

    def _reject_if_resolved(self, request: _Request, verb: str) -> None:
        if not self._seen(request) and self._state.status == "resolved":
            raise ValueError(f"incident {self._state.key} is resolved; it can no longer be {verb}")

    def _answer(self, request: _Request, message: str, change: Callable[[], None] | None = None) -> UpdateResult:
        if self._seen(request):
            assert request.request_id is not None
            message = self._state.handled_requests[request.request_id] + " (repeated request, not applied again)"
        else:
            if change is not None:
                change()
                self._wake = True
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
        if self._state.acknowledged_at is None:
            self._state.acknowledged_by = by
            self._state.acknowledged_at = workflow.now()
        self._state.next_escalation_at = None

    # --- acknowledge -----------------------------------------------------------------------------------

    @workflow.update(name="acknowledge")
    def acknowledge(self, request: AcknowledgeRequest) -> UpdateResult:
        state = self._state
        if state.status != "triggered":
            return self._answer(request, f"already {state.status} (acknowledged by {state.acknowledged_by})")

        def change() -> None:
            self._mark_acknowledged(request.by)
            state.status = "acknowledged"
            self._record("acknowledged", f"acknowledged by {request.by}; paging stopped", by=request.by)

        return self._answer(request, f"acknowledged by {request.by}", change)

    @acknowledge.validator
    def _validate_acknowledge(self, request: AcknowledgeRequest) -> None:
        self._reject_if_resolved(request, "acknowledged")

    # --- escalate --------------------------------------------------------------------------------------

    @workflow.update(name="escalate")
    def escalate(self, request: EscalateRequest) -> UpdateResult:
        def change() -> None:
            self._state.escalation.pending_manual += 1
            reason = f": {request.reason}" if request.reason else ""
            self._record("escalated", f"escalated by {request.by}{reason}", by=request.by)
            if self._state.paging_held:
                # A person asked for this one: it leaves the storm's cover and pages on its own from now.
                self._state.paging_held = False
                self._record("storm", f"paging resumed by {request.by}: this incident now pages on its own")

        return self._answer(request, f"escalation to level {self._state.escalation_level + 1} requested", change)

    @escalate.validator
    def _validate_escalate(self, request: EscalateRequest) -> None:
        self._reject_if_resolved(request, "escalated")
        if not self._seen(request) and self._state.escalation.exhausted:
            raise ValueError(f"incident {self._state.key} has already been escalated past the last level")

    # --- mitigate --------------------------------------------------------------------------------------

    @workflow.update(name="mitigate")
    def mitigate(self, request: MitigateRequest) -> UpdateResult:
        state = self._state
        if state.status == "mitigated":
            return self._answer(request, "already mitigated")

        def change() -> None:
            self._mark_acknowledged(request.by)
            state.status = "mitigated"
            state.mitigated_at = workflow.now()
            summary = f": {request.summary}" if request.summary else ""
            self._record("mitigated", f"mitigated by {request.by}{summary}", by=request.by)

        return self._answer(request, f"mitigated by {request.by}", change)

    @mitigate.validator
    def _validate_mitigate(self, request: MitigateRequest) -> None:
        self._reject_if_resolved(request, "mitigated")

    # --- resolve ---------------------------------------------------------------------------------------

    @workflow.update(name="resolve")
    def resolve(self, request: ResolveRequest) -> UpdateResult:
        state = self._state

        def change() -> None:
            self._mark_acknowledged(request.by)
            state.status = "resolved"
            state.resolved_by = request.by
            state.resolved_at = workflow.now()
            state.resolution_summary = request.summary or None
            summary = f": {request.summary}" if request.summary else ""
            self._record("resolved", f"resolved by {request.by}{summary}", by=request.by)

        return self._answer(request, f"resolved by {request.by}", change)

    @resolve.validator
    def _validate_resolve(self, request: ResolveRequest) -> None:
        self._reject_if_resolved(request, "resolved again")

    # --- annotate --------------------------------------------------------------------------------------

    @workflow.update(name="annotate")
    def annotate(self, request: AnnotateRequest) -> UpdateResult:
        return self._answer(request, "note added", lambda: self._record("note", request.text, by=request.by))

    @annotate.validator
    def _validate_annotate(self, request: AnnotateRequest) -> None:
        self._reject_if_resolved(request, "annotated")

    # --- set_severity ----------------------------------------------------------------------------------

    @workflow.update(name="set_severity")
    def set_severity(self, request: SetSeverityRequest) -> UpdateResult:
        state = self._state
        if request.severity == state.severity:
            return self._answer(request, f"severity already {state.severity}")

        def change() -> None:
            old = state.severity
            state.severity = request.severity
            reason = f": {request.reason}" if request.reason else ""
            self._record("severity_changed", f"{old} → {request.severity} by {request.by}{reason}", by=request.by)

        return self._answer(request, f"severity set to {request.severity}", change)

    @set_severity.validator
    def _validate_set_severity(self, request: SetSeverityRequest) -> None:
        self._reject_if_resolved(request, "re-classified")
        known = self._policy.incident_classification.severity_levels
        if request.severity not in known:
            raise ValueError(f"unknown severity {request.severity!r} (known: {', '.join(known)})")

    # --- alerts ----------------------------------------------------------------------------------------

    @workflow.signal(name="alert")
    def alert(self, event: AlertEvent) -> None:
        """Attach one alert. Repeats fold into one record; only changes reach the timeline."""
        self._take_alerts([event])

    @workflow.signal(name="alerts")
    def alerts(self, batch: AlertBatch) -> None:
        """Attach every alert of one received payload at once (the receiver's signal-with-start)."""
        self._take_alerts(batch.events)

    def _take_alerts(self, events: list[AlertEvent]) -> None:
        state = self._state
        if state.status == "resolved":
            return
        now = workflow.now()
        for kind, text in bounds.take_alerts(state, events, now, self._policy.limits.alerts_per_incident):
            self._record(kind, text)
        quiet = bounds.all_quiet(state)
        before = state.alerts_resolved_at
        if not quiet:
            state.alerts_resolved_at = None
        elif state.alerts_resolved_at is None:
            state.alerts_resolved_at = now
        # Re-plan only when the auto-resolve timer starts or is cancelled: waking on every repeat of a
        # firing alert cost a timer restart per alert in a storm (runs recorded before the
        # "alerts-wake-on-change" patch still wake every time).
        if self._auto_resolve and (self._wake_on_every_alert or state.alerts_resolved_at != before):
            self._wake = True

    # --- query -----------------------------------------------------------------------------------------

    @workflow.query(name="status")
    def status(self) -> IncidentState:
        return self._state
