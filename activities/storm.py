"""Storm admission: ask the storm guard about a new incident and, when it joins a storm, tell the storm incident.

The threshold, the window and the storm incident's own plan come from this worker's policy, never from the
asking workflow. Both calls are idempotent: the update id is fixed per activity, and the storm incident
ignores members it already lists.
"""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio import activity
from temporalio.client import Client

from tocsin import storm
from tocsin.client import LongLivedGuard, ask_guard
from tocsin.incidents import open_or_signal
from tocsin.models import INCIDENT_TASK_QUEUE
from tocsin.policy.models import Policy
from tocsin.policy.triage import TriggerRequest, plan_incident
from tocsin.storm_models import (
    STORM_GUARD_WORKFLOW_ID,
    AdmitAnswer,
    AdmitRequest,
    GuardAdmit,
    StormGuardState,
    StormMember,
    StormMembers,
)


class StormActivities:
    def __init__(self, client: Client, policy: Policy) -> None:
        self.client = client
        self.policy = policy

    @activity.defn(name="storm_admit")
    async def admit(self, request: AdmitRequest) -> AdmitAnswer:
        config = self.policy.intake.storm
        if not config.enabled:
            return AdmitAnswer(held=False, reason="storm consolidation is off (intake.storm.threshold: 0)")
        info = activity.info()
        ask = GuardAdmit(member=request.member, manual=request.manual, threshold=config.threshold, window=config.window)
        guard = LongLivedGuard(
            workflow="StormGuardWorkflow",
            workflow_id=STORM_GUARD_WORKFLOW_ID,
            initial=StormGuardState(),
            task_queue=INCIDENT_TASK_QUEUE,
            summary="Storm guard: a burst of new incidents pages once",
        )
        answer = await ask_guard(
            self.client, guard, "admit", ask, f"{info.workflow_id}/{info.activity_id}", AdmitAnswer
        )
        if answer.held and answer.storm_key:
            await self._join(answer.storm_key, [*answer.earlier, request.member])
        # The incident needs only its own answer: the earlier members went to the storm incident.
        return answer.model_copy(update={"earlier": []})

    async def _join(self, key: str, members: list[StormMember]) -> None:
        """Open the storm incident (as severe as its most severe member) or add the members to it."""
        severity = storm.most_severe([m.severity for m in members])
        trigger = TriggerRequest(
            service=storm.STORM_SERVICE,
            severity=severity,
            title=f"Alert storm: more than {self.policy.intake.storm.threshold} new incidents at once",
            labels={"alertname": storm.STORM_ALERTNAME},
            key=key,
            source="storm",
        )
        inp = plan_incident(self.policy, trigger, datetime.now(UTC)).model_copy(update={"storm": True})
        await open_or_signal(
            self.client, inp, StormMembers(members=members, window=self.policy.intake.storm.window), "storm_members"
        )
