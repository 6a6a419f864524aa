"""A deliberately non-deterministic edit of IncidentWorkflow, used to prove that replay catches one.

It is what a well-meaning change looks like: "run the automatic actions before paging". Deployed without
`workflow.patched()`, it would break every incident already open.
"""

from __future__ import annotations

from temporalio import workflow

from tocsin.incident.contracts import IncidentInput, IncidentState
from workflows.incident import IncidentWorkflow


@workflow.defn(name="IncidentWorkflow")
class ReorderedIncidentWorkflow(IncidentWorkflow):
    @workflow.run
    async def run(self, inp: IncidentInput) -> IncidentState:
        state = self._core.state
        for action in self._core.policy.severity(state.severity).automatic_actions:
            state.automatic_actions_done.append(action)
            await self._escalation.automatic_action(action)
        return await super().run(inp)
