"""Delivering notifications. Until the channels issue lands, every channel delivers to the outbox."""

from __future__ import annotations

import asyncio
import logging

from temporalio import activity

from activities.outbox import Outbox
from tocsin.models import Delivery, DeliveryReceipt

log = logging.getLogger("tocsin.delivery")


class DeliveryActivities:
    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    @activity.defn(name="deliver")
    async def deliver(self, delivery: Delivery) -> DeliveryReceipt:
        record = {
            "id": delivery.idempotency_key,
            "at": delivery.at.isoformat(),
            "incident": delivery.incident,
            "channel": delivery.channel,
            "target": delivery.target,
            "message": delivery.message,
        }
        # File I/O with fsync must not block the worker's event loop.
        written = await asyncio.to_thread(self.outbox.append, record)
        log.info(
            "%s %s -> %s %s: %s",
            "outbox" if written else "outbox (already delivered)",
            delivery.incident,
            delivery.channel,
            delivery.target,
            delivery.message,
        )
        return DeliveryReceipt(delivered=True, provider_id=f"outbox:{delivery.idempotency_key}", duplicate=not written)
