"""A deliberately non-deterministic edit of IncidentWorkflow, used to prove that replay catches one.

It is what a well-meaning change looks like: "run the automatic actions before paging". Deployed without
`workflow.patched()`, it would break every incident already open.
"""

from __future__ import annotations

from temporalio import workflow

from tocsin.models import IncidentInput, IncidentState
from workflows.incident import IncidentWorkflow


@workflow.defn(name="IncidentWorkflow")
class ReorderedIncidentWorkflow(IncidentWorkflow):
    @workflow.run
    async def run(self, inp: IncidentInput) -> IncidentState:
        for action in self._policy.severity(self._state.severity).automatic_actions:
            self._state.automatic_actions_done.append(action)
            await self._automatic_action(action)
        return await super().run(inp)
