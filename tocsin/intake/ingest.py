"""From validated alerts to incidents: one Temporal call per incident key, never one per alert.

Called by the receiver only after the whole payload has been validated, so a rejected payload changes
nothing. Returns only after Temporal has durably accepted every key's work; if it cannot, raises
TemporalUnavailable and the sender retries (at-least-once is safe: alerts coalesce by fingerprint).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from tocsin.incidents import open_or_signal
from tocsin.intake.models import IngestResult, NormalizedAlert, TemporalUnavailable
from tocsin.intake.routing import incident_key, plan_for_alert
from tocsin.models import AlertBatch, AlertEvent, incident_workflow_id
from tocsin.policy.models import Policy
from tocsin.updates import AcknowledgeRequest

log = logging.getLogger("tocsin.intake")

# A missing incident is not an outage: a resolved alert for an incident that never opened is simply done.
_NOT_THERE = (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION)


def _event(alert: NormalizedAlert) -> AlertEvent:
    summary = alert.summary or alert.labels.get("alertname", "")
    return AlertEvent(
        fingerprint=alert.fingerprint,
        status=alert.status,
        labels=alert.labels,
        summary=summary[:500],
        starts_at=alert.starts_at,
        ends_at=alert.ends_at,
    )


def group_by_incident(policy: Policy, alerts: list[NormalizedAlert]) -> dict[str, list[NormalizedAlert]]:
    groups: dict[str, list[NormalizedAlert]] = {}
    for alert in alerts:
        groups.setdefault(incident_key(policy, alert), []).append(alert)
    return groups


async def _one_incident(client: Client, policy: Policy, key: str, alerts: list[NormalizedAlert]) -> bool:
    """Deliver one key's alerts. True if an incident was opened or reached."""
    events = [_event(a) for a in alerts if not a.acknowledge]
    firing = [a for a in alerts if a.status == "firing" and not a.acknowledge]
    reached = False
    if firing:
        batch = AlertBatch(events=events)
        await open_or_signal(client, plan_for_alert(policy, firing[0], key, datetime.now(UTC)), batch)
        reached = True
    elif events:
        batch = AlertBatch(events=events)
        # Only resolutions: they may close an open incident, but must never open one.
        try:
            await client.get_workflow_handle(incident_workflow_id(key)).signal("alerts", batch)
            reached = True
        except RPCError as err:
            if err.status not in _NOT_THERE:
                raise
    for ack in (a for a in alerts if a.acknowledge):
        reached = await _acknowledge(client, key, ack) or reached
    return reached


async def _acknowledge(client: Client, key: str, alert: NormalizedAlert) -> bool:
    who = alert.acknowledged_by or f"{alert.source} event"
    handle = client.get_workflow_handle(incident_workflow_id(key))
    try:
        await handle.execute_update("acknowledge", AcknowledgeRequest(by=who))
    except WorkflowUpdateFailedError as err:
        log.info("acknowledge of %s from %s refused: %s", key, alert.source, err.cause)
        return False
    except RPCError as err:
        if err.status not in _NOT_THERE:
            raise
        return False
    return True


async def ingest_alerts(client: Client, policy: Policy, alerts: list[NormalizedAlert]) -> IngestResult:
    groups = group_by_incident(policy, alerts)
    outcomes = await asyncio.gather(
        *(_one_incident(client, policy, key, group) for key, group in groups.items()), return_exceptions=True
    )
    failures = [o for o in outcomes if isinstance(o, BaseException)]
    for failure in failures:
        if not isinstance(failure, RPCError | RuntimeError):
            raise failure  # a bug, not an outage: let it surface as one
    if failures:
        # Some keys may have been accepted: the sender's retry re-delivers them, and they coalesce.
        first = failures[0]
        reason = first.message if isinstance(first, RPCError) else str(first) or type(first).__name__
        log.warning("Temporal did not accept %d of %d incident keys: %s", len(failures), len(groups), reason)
        raise TemporalUnavailable(f"Temporal did not accept the alerts: {reason}") from first
    return IngestResult(keys=list(groups), alerts=len(alerts), opened_or_updated=sum(o is True for o in outcomes))
