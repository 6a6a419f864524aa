"""Heartbeats' side effects and the messages their workflow carries (workflows/heartbeat.py).

A missed heartbeat opens an incident the way `tocsin trigger` does (triage under this worker's policy, then
the IncidentWorkflow), keyed `heartbeat-<name>-<n>` so a retried attempt never opens a second one; the next
ping resolves it with the `resolve` update, by "tocsin".
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from tocsin.incident.client import IncidentError, open_incident, send_update
from tocsin.incident.updates import ResolveRequest
from tocsin.policy.schema import Policy
from tocsin.policy.triage import TriageError, TriggerRequest, plan_incident

HEARTBEAT_WORKFLOW = "HeartbeatWorkflow"
MISSED_ALERTNAME = "TocsinHeartbeatMissed"
RESOLVED_BY = "tocsin"


def heartbeat_workflow_id(name: str) -> str:
    return f"heartbeat-{name}"


def heartbeat_incident_key(name: str, n: int) -> str:
    return f"heartbeat-{name}-{n}"


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Ping(_Message):
    """One ping; small on purpose: a heartbeat's history grows by one of these per interval."""

    source: str = Field(default="receiver", max_length=100)


class HeartbeatInput(_Message):
    """The heartbeat's declaration (from the receiver's policy) and what a continued run carries over."""

    name: str
    interval: timedelta
    grace: timedelta
    service: str
    severity: str
    pings: int = 0
    misses: int = 0
    last_ping: datetime | None = None
    open_key: str | None = None

    @property
    def deadline(self) -> timedelta:
        return self.interval + self.grace


class HeartbeatStatus(_Message):
    name: str
    state: Literal["waiting", "ok", "missed"]
    last_ping: datetime | None
    due: datetime | None
    pings: int
    misses: int
    open_incident: str | None


class MissedRequest(_Message):
    name: str
    key: str
    service: str
    severity: str
    deadline: timedelta
    last_ping: datetime | None
    missed_at: datetime


class RecoveredRequest(_Message):
    name: str
    key: str


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
