"""Remediation actions. The runbook engine arrives in its own issue; until then each action is queued to
the outbox with its rendered parameters, so an operator sees exactly what would run."""

from __future__ import annotations

import asyncio
import logging

from temporalio import activity

from activities.outbox import Outbox
from tocsin.models import RemediationRequest, RemediationResult

log = logging.getLogger("tocsin.remediation")


class RemediationActivities:
    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    @activity.defn(name="remediate")
    async def remediate(self, request: RemediationRequest) -> RemediationResult:
        params = ", ".join(f"{k}={v}" for k, v in sorted(request.action.params.items()))
        message = f"{request.action.type}({params})"
        record = {
            "id": request.idempotency_key,
            "at": request.at.isoformat(),
            "incident": request.incident,
            "channel": "remediation",
            "target": request.action.type,
            "message": message,
        }
        written = await asyncio.to_thread(self.outbox.append, record)
        log.info("remediation queued for %s: %s%s", request.incident, message, "" if written else " (already)")
        return RemediationResult(outcome="queued", detail=f"queued to the outbox: {message}")
