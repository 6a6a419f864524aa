"""The response workflow's actions and the link to an earlier incident: what an incident does once, at its start.

Notifications go through the incident's deliveries; remediation is an activity; runbooks are children
(workflows/_incident_runbooks.py). Each outcome is on the timeline, and a failure is recorded, never a stall.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.lookup import LookupActivities
    from activities.remediation import RemediationActivities
    from tocsin.models import IncidentInput, IncidentState, PlannedAction, PreviousIncidentRequest, RemediationRequest
    from tocsin.policy.actions import Route
    from tocsin.policy.models import Policy
    from tocsin.policy.priority import background
    from tocsin.policy.triage import REMEDIATION_ACTIONS
    from workflows.idempotency import idempotency_key
    from workflows._incident_view import activity_options


class IncidentResponse:
    _state: IncidentState
    _policy: Policy
    _input: IncidentInput
    _runbooks_enabled: bool

    def _record(self, kind: str, text: str, by: str | None = None) -> None:
        raise NotImplementedError

    async def _deliver(self, step: str, route: Route) -> bool:
        raise NotImplementedError

    def _runbook_action(self, action: PlannedAction) -> None:
        raise NotImplementedError

    def _priority(self) -> int:
        raise NotImplementedError

    async def _link_previous(self) -> None:
        """A recurrence under the same key points at the incident before it; a failed look-up only says so."""
        info = workflow.info()
        request = PreviousIncidentRequest(workflow_id=info.workflow_id, run_id=info.run_id)
        try:
            previous = await workflow.execute_activity_method(
                LookupActivities.find_previous_incident,
                request,
                # Enrichment: after every incident's pages (tocsin/policy/priority.py).
                **activity_options(
                    self._policy, "find the previous incident with this key", background(self._priority())
                ),
            )
        except ActivityError as err:
            self._record("note", f"could not look for an earlier incident with this key: {err.cause or err}")
            return
        if previous is not None:
            self._state.previous_run_id = previous.run_id
            self._record(
                "recurrence",
                f"recurs: the previous incident with this key (run {previous.run_id}) closed at "
                f"{previous.closed_at:%Y-%m-%d %H:%M:%S}Z",
            )

    async def _respond(self) -> None:
        """The response workflow's actions: notifications, then remediation, each on the timeline."""
        for i, action in enumerate(self._input.actions):
            if self._state.status == "resolved":
                return
            if action.type == "notify_stakeholders":
                channels = [c.strip() for c in action.params.get("channels", "").split(",") if c.strip()]
                message = action.params.get("message", "")
                await asyncio.gather(*(self._deliver(f"respond/{i}/{c}", Route("slack", c, message)) for c in channels))
                self._record("action", f"notify_stakeholders: {', '.join(channels)}")
            elif self._runbooks_enabled and (action.type == "execute_runbook" or "plan" in action.params):
                self._runbook_action(action)
            elif action.type in REMEDIATION_ACTIONS:
                await self._remediate(i, action)

    async def _remediate(self, index: int, action: PlannedAction) -> None:
        request = RemediationRequest(
            idempotency_key=idempotency_key(f"remediate/{index}"),
            incident=self._state.key,
            action=action,
            at=workflow.now(),
        )
        try:
            result = await workflow.execute_activity_method(
                RemediationActivities.remediate,
                request,
                **activity_options(self._policy, f"remediate: {action.type}", background(self._priority())),
            )
            self._record("remediation", f"{action.type}: {result.outcome} — {result.detail}")
        except ActivityError as err:
            self._record("remediation", f"{action.type}: failed — {err.cause or err}")
