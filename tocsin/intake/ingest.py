"""From validated alerts to incidents: one Temporal call per incident key, never one per alert.

Called by the receiver only after the whole payload has been validated, and every key is planned (pure,
tocsin.intake.plan) before the first Temporal call, so a payload refused here changed nothing either.
Returns only after Temporal has durably accepted every key's work. What Temporal answers decides what the
sender is told: unreachable or overloaded is TemporalUnavailable (503: retry, at-least-once is safe because
alerts coalesce by fingerprint); a permanent refusal is TemporalRefused (4xx or 500, never "retry").
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from datetime import UTC, datetime, timedelta
from typing import Literal

from temporalio.client import Client, RPCTimeoutOrCancelledError, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from tocsin.incident.contracts import incident_workflow_id
from tocsin.incident.updates import AcknowledgeRequest, ResolveRequest
from tocsin.intake.coalesce import SignalCoalescer
from tocsin.intake.contracts import (
    IngestResult,
    IntakeRefused,
    NormalizedAlert,
    TemporalRefusal,
    TemporalRefused,
    TemporalUnavailable,
)
from tocsin.intake.plan import KeyPlan, plan_payload
from tocsin.intake.routing import incident_key
from tocsin.intake.sender import NOT_THERE, AlertsSender
from tocsin.policy.schema import Policy

log = logging.getLogger("tocsin.intake")

# Unreachable or overloaded: the same call can succeed later.
_UNAVAILABLE = frozenset({RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.RESOURCE_EXHAUSTED})
# The request itself is refused: sending it again is refused again.
_INVALID = frozenset({RPCStatusCode.INVALID_ARGUMENT, RPCStatusCode.FAILED_PRECONDITION, RPCStatusCode.OUT_OF_RANGE})
# "Blob data size exceeds limit." (INVALID_ARGUMENT) and gRPC's "received message ... larger than max"
# (RESOURCE_EXHAUSTED, which is otherwise an overload) both mean the payload is too big for Temporal.
_TOO_LARGE = ("size exceeds limit", "larger than max", "too large")
# An update waits for a worker to run it: bounded, so a POST never hangs on a stopped worker (it is a 503).
UPDATE_TIMEOUT = timedelta(seconds=10)
PAGERDUTY_RESOLVED_BY = "pagerduty event"
PAGERDUTY_RESOLUTION = "resolved by a PagerDuty Events v2 resolve event"

Failure = Literal["unavailable"] | TemporalRefusal


def classify(err: BaseException) -> Failure | None:
    """What a failed Temporal call means for the sender; None for anything that is not Temporal's answer."""
    if isinstance(err, RPCError):
        if any(words in err.message.lower() for words in _TOO_LARGE):
            return "too_large"
        if err.status in _UNAVAILABLE:
            return "unavailable"
        return "invalid" if err.status in _INVALID else "failed"
    # The client could not connect (RuntimeError), or an update's call timed out waiting for a worker.
    if isinstance(err, RuntimeError | RPCTimeoutOrCancelledError):
        return "unavailable"
    return None


def group_by_incident(policy: Policy, alerts: list[NormalizedAlert]) -> dict[str, list[NormalizedAlert]]:
    groups: dict[str, list[NormalizedAlert]] = {}
    for alert in alerts:
        groups.setdefault(incident_key(policy, alert), []).append(alert)
    return groups


def coalescing_sender(client: Client) -> SignalCoalescer:
    """For a long-lived caller (the receiver, the detector's activity): concurrent payloads share calls."""
    return SignalCoalescer(AlertsSender(client))


async def _deliver(client: Client, plan: KeyPlan, coalescer: SignalCoalescer | None) -> bool:
    """Make one key's calls. True if an incident was opened or reached."""
    reached = False
    if plan.batch is not None:
        send = coalescer.send if coalescer is not None else AlertsSender(client)
        reached = await send(plan.key, plan.start, plan.batch)
    for ack in plan.acknowledgements:
        who = ack.acknowledged_by or f"{ack.source} event"
        reached = await _update(client, plan.key, "acknowledge", AcknowledgeRequest(by=who)) or reached
    for resolution in plan.resolutions:
        reached = await _update(client, plan.key, "resolve", _resolve_request(resolution)) or reached
    return reached


def _resolve_request(alert: NormalizedAlert) -> ResolveRequest:
    # The same resolve event sent again (a sender's retry) carries the same id: the incident applies it once,
    # and answers an already resolved incident without refusing.
    digest = hashlib.sha256((alert.dedup_key or alert.fingerprint).encode()).hexdigest()[:32]
    request_id = f"pagerduty-resolve-{digest}"
    return ResolveRequest(by=PAGERDUTY_RESOLVED_BY, summary=PAGERDUTY_RESOLUTION, request_id=request_id)


async def _update(client: Client, key: str, name: str, request: AcknowledgeRequest | ResolveRequest) -> bool:
    handle = client.get_workflow_handle(incident_workflow_id(key))
    try:
        await handle.execute_update(name, request, id=request.request_id, rpc_timeout=UPDATE_TIMEOUT)
    except WorkflowUpdateFailedError as err:
        # Refused by the incident (already resolved, say): the sender's event is applied as far as it can be.
        log.info("%s of %s by %s refused: %s", name, key, request.by, err.cause)
        return False
    except RPCError as err:
        if err.status not in NOT_THERE:
            raise
        return False  # no incident, or a closed one: nothing left to acknowledge or resolve
    return True


def _refused(failures: list[tuple[str, BaseException, Failure]], keys: int) -> Exception:
    """The one exception the caller sees: unavailable first (a retry may succeed and coalesces), then the
    receiver's own trouble, then what is wrong with the payload."""
    order: tuple[Failure, ...] = ("unavailable", "failed", "too_large", "invalid")
    for kind in order:
        found = [(key, err) for key, err, k in failures if k == kind]
        if not found:
            continue
        key, err = found[0]
        detail = f"{err.status.name}: {err.message}" if isinstance(err, RPCError) else str(err) or type(err).__name__
        log.warning("Temporal did not accept %d of %d incident keys (%s): %s", len(failures), keys, kind, detail)
        if kind == "unavailable":
            return TemporalUnavailable(f"Temporal did not accept the alerts: {detail}")
        accepted = f"; the other {keys - len(failures)} incident keys were accepted" if keys > len(failures) else ""
        return TemporalRefused(f"Temporal refused the alerts of incident {key}: {detail}{accepted}", kind)
    raise AssertionError("no failure to report")


async def ingest_alerts(
    client: Client,
    policy: Policy,
    alerts: list[NormalizedAlert],
    *,
    skip_unplannable: bool = False,
    coalescer: SignalCoalescer | None = None,
) -> IngestResult:
    """Plan every key, then deliver them concurrently (through `coalescer`, when given, so that concurrent
    payloads for one incident share a call).

    An alert that cannot be planned refuses the whole payload (IntakeRefused) before any call, unless
    `skip_unplannable` (the detector): then it is left out, as is a key Temporal refuses for good, and both
    are listed in the result's `skipped`."""
    plan = plan_payload(policy, alerts, datetime.now(UTC))
    if plan.refused and not skip_unplannable:
        raise IntakeRefused([str(r) for r in plan.refused[:20]])
    skipped = [str(r) for r in plan.refused]
    outcomes = await asyncio.gather(*(_deliver(client, k, coalescer) for k in plan.keys), return_exceptions=True)
    failures: list[tuple[str, BaseException, Failure]] = []
    for key_plan, outcome in zip(plan.keys, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            kind = classify(outcome)
            if kind is None:
                raise outcome  # a bug, not Temporal's answer: let it surface as one
            failures.append((key_plan.key, outcome, kind))
    if skip_unplannable:
        for key, err, kind in [f for f in failures if f[2] != "unavailable"]:
            skipped.append(f"incident {key}: Temporal refused it ({kind}): {err}")
        failures = [f for f in failures if f[2] == "unavailable"]
    if failures:
        # Some keys may have been accepted: the sender's retry re-delivers them, and they coalesce.
        raise _refused(failures, len(plan.keys))
    reached = sum(o is True for o in outcomes)
    return IngestResult(
        keys=[k.key for k in plan.keys], alerts=len(alerts), opened_or_updated=reached, skipped=skipped or None
    )
