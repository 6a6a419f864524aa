"""Heartbeats' side effects and the messages their workflow carries (workflows/heartbeat.py).

A missed heartbeat opens an incident the way `tocsin trigger` does (triage under this worker's policy, then
the IncidentWorkflow), keyed `heartbeat-<name>-<n>` so a retried attempt never opens a second one; the next
ping resolves it with the `resolve` update, by "tocsin".
"""

from __future__ import annotations

from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from tocsin.heartbeat.contracts import MISSED_ALERTNAME, RESOLVED_BY, MissedRequest, RecoveredRequest
from tocsin.incident.client import IncidentError, open_incident, send_update
from tocsin.incident.updates import ResolveRequest
from tocsin.policy.schema import Policy
from tocsin.policy.triage import TriageError, TriggerRequest, plan_incident


class HeartbeatActivities:
    def __init__(self, client: Client, policy: Policy) -> None:
        self.client = client
        self.policy = policy

    @activity.defn(name="heartbeat_missed")
    async def missed(self, request: MissedRequest) -> bool:
        """Open the incident; False when one with this key is already open (a retried attempt)."""
        trigger = TriggerRequest(
            service=request.service,
            severity=request.severity,
            title=f"Heartbeat {request.name} missed",
            labels={"alertname": MISSED_ALERTNAME, "heartbeat": request.name},
            key=request.key,
            source="heartbeat",
        )
        try:
            # The incident's clock starts at the missed deadline, not whenever this attempt runs.
            inp = plan_incident(self.policy, trigger, request.missed_at)
        except TriageError as err:
            # A policy that cannot place the incident will not place it on a retry either.
            raise ApplicationError(str(err), type="TriageError", non_retryable=True) from err
        return await open_incident(self.client, inp)

    @activity.defn(name="heartbeat_recovered")
    async def recovered(self, request: RecoveredRequest) -> bool:
        """Resolve the incident; False when a person resolved or closed it meanwhile (nothing left to do)."""
        summary = f"Heartbeat {request.name} pinged again"
        # The request id is the update id: a retried attempt lands once.
        resolve = ResolveRequest(by=RESOLVED_BY, request_id=f"{request.key}-recovered", summary=summary)
        try:
            await send_update(self.client, request.key, "resolve", resolve)
        except IncidentError as err:
            activity.logger.info("heartbeat %s: %s", request.name, err)
            return False
        return True
