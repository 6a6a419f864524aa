"""Delivering notifications: through the channel's live adapter when it is configured, else to the outbox.

Adapter errors become Temporal's retry semantics here, in one place: a permanent failure (4xx, bad address)
is non-retryable so the incident records it and moves on; a rate limit retries after the vendor's delay.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import timedelta

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.outbox import Outbox
from tocsin.channels.base import Channel, Message, PermanentDeliveryError, RetryableDeliveryError
from tocsin.models import Delivery, DeliveryReceipt

log = logging.getLogger("tocsin.delivery")


class DeliveryActivities:
    def __init__(self, outbox: Outbox, channels: Mapping[str, Channel] | None = None) -> None:
        self.outbox = outbox
        self.channels = dict(channels or {})

    @activity.defn(name="deliver")
    async def deliver(self, delivery: Delivery) -> DeliveryReceipt:
        channel = self.channels.get(delivery.channel)
        if channel is None:
            return await self._to_outbox(delivery)
        # The same fields under the same names; only the text is called `message` in the workflow's model.
        message = Message(text=delivery.message, **delivery.model_dump(exclude={"message"}))
        try:
            receipt = await channel.send(message)
        except PermanentDeliveryError as err:
            log.warning("%s -> %s %s failed for good: %s", delivery.incident, delivery.channel, delivery.target, err)
            raise ApplicationError(str(err), type="PermanentDeliveryError", non_retryable=True) from None
        except RetryableDeliveryError as err:
            delay = timedelta(seconds=err.retry_after) if err.retry_after else None
            raise ApplicationError(str(err), type="RetryableDeliveryError", next_retry_delay=delay) from None
        log.info(
            "%s -> %s %s: delivered (%s)", delivery.incident, delivery.channel, delivery.target, receipt.provider_id
        )
        return DeliveryReceipt(delivered=True, provider_id=receipt.provider_id, duplicate=receipt.duplicate)

    async def _to_outbox(self, delivery: Delivery) -> DeliveryReceipt:
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
