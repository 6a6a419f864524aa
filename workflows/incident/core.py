"""What every part of an incident shares: its input, policy and state, and how it records, shows and wakes.

The parts (deliveries, escalation, storm, runbooks, response, requests, closing) each hold this object and
nothing of each other's: the state they change is this one, in the open, and the only way back to the main
loop is `wake`. Pure: no I/O, safe in the workflow sandbox.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from tocsin import search_attributes as sa
    from tocsin.incident import bounds
    from tocsin.incident.contracts import IncidentInput, IncidentState, TimelineEntry
    from tocsin.policy.priority import incident_priority
    from workflows.incident.view import details_markdown


class IncidentCore:
    def __init__(self, inp: IncidentInput) -> None:
        self.input = inp
        self.policy = inp.policy
        self.state = inp.carried or self._opened(inp)
        # Set by a handler, cleared by the main loop before it sleeps: "something changed, look again".
        self.woken = False
        self._published: dict[str, object] = {}

    @staticmethod
    def _opened(inp: IncidentInput) -> IncidentState:
        now = workflow.now()
        # Capped at the opening: the first alert's time comes from the receiver's clock, the opening from the
        # server's, and a receiver running ahead must not make the incident open before its alert arrived.
        first_alert = min(inp.first_alert_at, now) if inp.first_alert_at else now
        return IncidentState(
            key=inp.key,
            title=inp.title,
            service=inp.service,
            severity=inp.severity,
            labels=inp.labels,
            response_workflow=inp.response_workflow,
            opened_at=now,
            first_alert_at=first_alert,
        )

    def wake(self) -> None:
        self.woken = True

    def resolved(self) -> bool:
        # A method, not an inline test: handlers change the status while the loop awaits.
        return self.state.status == "resolved"

    def priority(self) -> int:
        # From the severity now, not at the start: a sev3 raised to sev1 pages as a sev1 from then on.
        return incident_priority(self.policy, self.state.severity, self.input.storm)

    def record(self, kind: str, text: str, by: str | None = None, step: str | None = None) -> None:
        entry = TimelineEntry(at=workflow.now(), kind=kind, text=text, by=by, step=step)
        bounds.append_entry(self.state, entry, self.policy.limits.timeline_entries)
        workflow.set_current_details(details_markdown(self.state, self.policy))

    def publish(self) -> None:
        """Keep the search attributes operators filter on in step with the state; upsert only changes."""
        state = self.state
        wanted: dict[str, object] = {
            sa.SEVERITY.name: state.severity,
            sa.STATUS.name: state.status,
            sa.SERVICE.name: state.service,
            sa.LEVEL.name: state.escalation_level,
        }
        if wanted != self._published:
            workflow.upsert_search_attributes(
                [
                    sa.SEVERITY.value_set(state.severity),
                    sa.STATUS.value_set(state.status),
                    sa.SERVICE.value_set(state.service),
                    sa.LEVEL.value_set(state.escalation_level),
                ]
            )
            self._published = wanted
