"""The response workflow's actions and the link to an earlier incident: what an incident does once, at its start.

Notifications go through the incident's deliveries; remediation runs as runbooks, children of the incident
(workflows/incident/runbooks.py). Each outcome is on the timeline, and a failure is recorded, never a stall.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.incident import IncidentActivities
    from tocsin.incident.contracts import PreviousIncidentRequest
    from tocsin.policy.actions import Route
    from tocsin.policy.priority import background
    from tocsin.policy.triage import REMEDIATION_ACTIONS
    from workflows.incident.core import IncidentCore
    from workflows.incident.deliveries import Deliveries
    from workflows.incident.options import activity_options
    from workflows.incident.runbooks import Runbooks


class Response:
    def __init__(self, core: IncidentCore, deliveries: Deliveries, runbooks: Runbooks) -> None:
        self._core = core
        self._deliveries = deliveries
        self._runbooks = runbooks

    async def link_previous(self) -> None:
        """A recurrence under the same key points at the incident before it; a failed look-up only says so."""
        core = self._core
        info = workflow.info()
        request = PreviousIncidentRequest(workflow_id=info.workflow_id, run_id=info.run_id)
        try:
            previous = await workflow.execute_activity_method(
                IncidentActivities.find_previous_incident,
                request,
                # Enrichment: after every incident's pages (tocsin/policy/priority.py).
                **activity_options(
                    core.policy, "find the previous incident with this key", background(core.priority())
                ),
            )
        except ActivityError as err:
            core.record("note", f"could not look for an earlier incident with this key: {err.cause or err}")
            return
        if previous is not None:
            core.state.previous_run_id = previous.run_id
            core.record(
                "recurrence",
                f"recurs: the previous incident with this key (run {previous.run_id}) closed at "
                f"{previous.closed_at:%Y-%m-%d %H:%M:%S}Z",
            )

    async def respond(self) -> None:
        """The response workflow's actions: notifications, then remediation (runbooks), each on the timeline."""
        core = self._core
        for i, action in enumerate(core.input.actions):
            if core.resolved():
                return
            if action.type == "notify_stakeholders":
                channels = [c.strip() for c in action.params.get("channels", "").split(",") if c.strip()]
                message = action.params.get("message", "")
                sends = (self._deliveries.deliver(f"respond/{i}/{c}", Route("slack", c, message)) for c in channels)
                await asyncio.gather(*sends)
                core.record("action", f"notify_stakeholders: {', '.join(channels)}")
            elif action.type in REMEDIATION_ACTIONS or "plan" in action.params:
                self._runbooks.from_action(action)
