"""Storm admission: ask the storm guard about a new incident and, when it joins a storm, tell the storm incident.

The threshold, the window and the storm incident's own plan come from this worker's policy, never from the
asking workflow. Both calls are idempotent: the guard answers a key it has decided with the same answer, and
the storm incident ignores members it already lists.
"""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio import activity
from temporalio.client import Client
from temporalio.common import Priority

from tocsin.incident.client import open_or_signal
from tocsin.incident.contracts import INCIDENT_TASK_QUEUE
from tocsin.policy.limits import STORM_SERVICE
from tocsin.policy.priority import STORM_GUARD
from tocsin.policy.schema import Policy
from tocsin.policy.triage import TriggerRequest, plan_incident
from tocsin.storm import consolidation as storm
from tocsin.storm.contracts import (
    STORM_GUARD_WORKFLOW_ID,
    AdmitRequest,
    AdmitSent,
    GuardAdmit,
    JoinRequest,
    StormGuardState,
    StormMember,
    StormMembers,
)


class StormActivities:
    def __init__(self, client: Client, policy: Policy) -> None:
        self.client = client
        self.policy = policy

    @activity.defn(name="storm_admit")
    async def admit(self, request: AdmitRequest) -> AdmitSent:
        """Ask the storm guard (starting it the first time it is needed); it answers the incident by signal."""
        config = self.policy.intake.storm
        if not config.enabled:
            return AdmitSent(asked=False, reason="storm consolidation is off (intake.storm.threshold: 0)")
        ask = GuardAdmit(
            member=request.member,
            manual=request.manual,
            threshold=config.threshold,
            window=config.window,
            reply_to=activity.info().workflow_id,
        )
        # A retried attempt asks again: the guard answers a key it has decided with the same answer.
        await self.client.start_workflow(
            "StormGuardWorkflow",
            StormGuardState(),
            id=STORM_GUARD_WORKFLOW_ID,
            task_queue=INCIDENT_TASK_QUEUE,
            # Every new incident waits for the guard's answer before its first page (tocsin/policy/priority.py).
            priority=Priority(priority_key=STORM_GUARD),
            start_signal="admit",
            start_signal_args=[ask],
            static_summary="Storm guard: a burst of new incidents pages once",
        )
        return AdmitSent(asked=True)

    @activity.defn(name="storm_join")
    async def join(self, request: JoinRequest) -> None:
        """Add members to the storm incident, opening it the first time (repeats are ignored there)."""
        await self._join(request.storm_key, request.members)

    async def _join(self, key: str, members: list[StormMember]) -> None:
        """Open the storm incident (as severe as its most severe member) or add the members to it."""
        severity = storm.most_severe([m.severity for m in members])
        trigger = TriggerRequest(
            service=STORM_SERVICE,
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
