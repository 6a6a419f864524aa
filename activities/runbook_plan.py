"""Activity `runbook_plan`: the only place a runbook run's plan comes from, the worker's own loaded policy.

A caller names a runbook and gives label values; it never writes what runs. A run that was handed a plan
(rendered at triage, or crafted by whoever started the workflow) passes that plan's digest, and the answer
refuses it unless the worker's policy makes exactly the same plan: a foreign plan, or one rendered from a
policy the worker no longer has, never runs. Pure computation over the policy; no I/O.
"""

from __future__ import annotations

from temporalio import activity

from tocsin.policy.schema import Policy
from tocsin.runbook.contracts import PlanAnswer, PlanCall
from tocsin.runbook.plan_contracts import plan_digest
from tocsin.runbook.planner import PlanError, plan_request


class RunbookPlanning:
    def __init__(self, policy: Policy) -> None:
        self._policy = policy

    @activity.defn(name="runbook_plan")
    async def plan(self, call: PlanCall) -> PlanAnswer:
        request = call.request
        try:
            plan = plan_request(self._policy, request)
        except PlanError as err:
            return PlanAnswer(refused=f"cannot be planned by this worker's policy: {err}")
        digest = plan_digest(plan)
        if call.digest is not None and call.digest != digest:
            return PlanAnswer(
                digest=digest,
                refused=(
                    f"the plan given is not the one this worker's policy makes of {request.runbook} "
                    f"(sha256 {call.digest[:12]}, the policy's {digest[:12]}): a plan is never taken from a "
                    "caller; ask for the runbook by name"
                ),
            )
        if plan.violations:
            return PlanAnswer(digest=digest, refused="; ".join(plan.violations))
        return PlanAnswer(plan=plan, digest=digest, roster=self._policy.roster)
