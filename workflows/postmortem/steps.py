"""The post-mortem's activities as its parts call them: options, the parallel gather, notifications.

A source that fails is a SourceResult saying so, never a failed post-mortem: even an activity that gives up
(worker lost, retries exhausted) becomes "failed: <why>" here.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from tocsin.channels.slack import POST_PREFIX
    from tocsin.incident.contracts import Delivery, DeliveryReceipt, PostMortemInput
    from tocsin.postmortem.contracts import (
        GatherRequest,
        IncidentEvidenceRequest,
        SourceName,
        SourceResult,
    )
    from tocsin.roster import resolve as resolve_target
    from workflows.idempotency import idempotency_key
    from workflows.incident.targets import addresses, stakeholder_channel

SOURCES: tuple[SourceName, ...] = ("metrics", "logs", "changes", "pagerduty")


def options(
    summary: str,
    timeout: timedelta = timedelta(minutes=2),
    attempts: int = 5,
    heartbeat: timedelta | None = None,
) -> workflow.ActivityConfig:
    return workflow.ActivityConfig(
        start_to_close_timeout=timeout,
        heartbeat_timeout=heartbeat,
        retry_policy=RetryPolicy(
            initial_interval=timedelta(seconds=2),
            maximum_interval=timedelta(minutes=1),
            maximum_attempts=attempts,
            non_retryable_error_types=["PublishRejected", "PermanentDeliveryError", "ValueError"],
        ),
        summary=summary[:200],
    )


def gather_request(data: PostMortemInput) -> GatherRequest:
    incident = data.incident
    return GatherRequest(
        key=incident.key,
        service=incident.service,
        severity=incident.severity,
        labels=incident.labels,
        opened_at=incident.opened_at,
        resolved_at=incident.resolved_at or workflow.now(),
        settings=data.policy.postmortem,
    )


async def _one(source: SourceName, request: GatherRequest | IncidentEvidenceRequest, summary: str) -> SourceResult:
    try:
        result: SourceResult = await workflow.execute_activity(
            f"postmortem_gather_{source}", request, result_type=SourceResult, **options(summary)
        )
        return result
    except ActivityError as err:
        return SourceResult(source=source, status="failed", reason=f"gave up: {err.cause or err}")


async def gather(data: PostMortemInput) -> list[SourceResult]:
    """Every source at once; each fails on its own."""
    request = gather_request(data)
    own = IncidentEvidenceRequest(
        incident=data.incident, parent_workflow_id=data.parent_workflow_id, parent_run_id=data.parent_run_id
    )
    incident = _one("incident", own, "gather the incident's record")
    return list(await asyncio.gather(incident, *(_one(s, request, f"gather {s}") for s in SOURCES)))


async def notify(data: PostMortemInput, step: str, audience: list[str], text: str) -> list[str]:
    """Tell people (roster names, teams, #channels) through the delivery activity; returns what failed."""
    incident, roster = data.incident, data.policy.roster
    sends = []
    for who in audience:
        if who.startswith(POST_PREFIX):
            pairs, channel = [(who, who)], "slack"
        else:
            resolved = resolve_target(roster, who, workflow.now())
            channel = "slack" if who.startswith("#") else stakeholder_channel(resolved)
            pairs = addresses(resolved, channel)
        for name, address in pairs:
            delivery = Delivery(
                idempotency_key=idempotency_key(f"{step}/{who}/{name}"),
                incident=incident.key,
                channel=channel,
                target=address,
                message=text,
                at=workflow.now(),
                title=f"Post-mortem: {incident.title}",
                severity=incident.severity,
                service=incident.service,
                status=incident.status,
            )
            sends.append(_deliver(delivery))
    failures = await asyncio.gather(*sends)
    return [f for f in failures if f]


async def _deliver(delivery: Delivery) -> str:
    try:
        await workflow.execute_activity(
            "deliver",
            delivery,
            result_type=DeliveryReceipt,
            **options(f"{delivery.channel} → {delivery.target}", timedelta(seconds=30)),
        )
        return ""
    except ActivityError as err:
        return f"{delivery.channel} → {delivery.target}: {err.cause or err}"
