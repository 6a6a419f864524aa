"""A workflow that resolves an on-call target, to prove resolution runs in Temporal's workflow sandbox.

tocsin.roster is passed through, exactly as workflows/incident/ imports it, and resolution runs in workflow
code on a zone nothing else in the process has loaded.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    # As workflows/ does: passed through, zoneinfo is the real module. Imported inside the sandbox, its
    # ZoneInfo would be a restricted proxy that datetime refuses as a tzinfo.
    from tocsin.policy.schema import Policy
    from tocsin.roster import ResolvedTarget, resolve


class RosterProbe(BaseModel):
    policy: Policy
    targets: list[str]
    at: datetime | None = None


@workflow.defn
class RosterProbeWorkflow:
    @workflow.run
    async def run(self, probe: RosterProbe) -> list[ResolvedTarget]:
        at = probe.at or workflow.now()
        return [resolve(probe.policy.roster, target, at) for target in probe.targets]
