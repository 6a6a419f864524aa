"""Delivering notifications: through the channel's live adapter when it is configured, else to the outbox.

Adapter errors become Temporal's retry semantics here, in one place: a permanent failure (4xx, bad address)
is non-retryable so the incident records it and moves on; a rate limit retries after the vendor's delay.
Live sends are paced first (tocsin.channels.pacing) so a burst stays under each vendor's limit, pages and
the more urgent incidents' sends first when several wait for one vendor; the outbox is not paced.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping
from datetime import timedelta

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.outbox import Outbox
from tocsin.channels.base import Channel, Message, PermanentDeliveryError, RetryableDeliveryError
from tocsin.channels.pacing import Pacer, Urgency, pace_of
from tocsin.incident.contracts import Delivery, DeliveryReceipt
from tocsin.policy.priority import DEFAULT

log = logging.getLogger("tocsin.delivery")


def _pacing_cap() -> float | None:
    """At most a third of this attempt's start-to-close timeout goes to waiting for a slot: the send keeps
    the rest (the default delivery timeout is 30 s, so the cap is 10 s)."""
    timeout = activity.info().start_to_close_timeout if activity.in_activity() else None
    return timeout.total_seconds() / 3 if timeout else None


# An incident's page is the step `page/<level>/<attempt>` (workflows/incident/escalation.py `_page`), with `/<who>` when
# the roster resolves the target to several people; the idempotency key is `<workflow id>/<run>/<step>` and an
# incident's workflow id starts `incident-`. Nothing else starts a step with `page/`, post-mortems included.
_PAGE_STEP = re.compile(r"^incident-.+/page/\d+/\d+(?:/|$)")


def is_page(delivery: Delivery) -> bool:
    """Does this delivery wake someone for an incident (a step of the on-call chain)? `Delivery` has no field
    that says so and its shape is part of every workflow's history, so the step in its idempotency key, which
    the workflow builds the same way on every replay, is what tells (the bench counts pages the same way)."""
    return _PAGE_STEP.match(delivery.idempotency_key) is not None


def _urgency(delivery: Delivery) -> Urgency:
    """Pages first, then by the activity's Temporal priority key (the incident's, by severity; bookkeeping
    later): the order a vendor's slots are handed out in when several sends wait for them. No key (or 0,
    "inherit") is Temporal's default."""
    key = activity.info().priority.priority_key if activity.in_activity() else None
    return Urgency(page=is_page(delivery), priority=key or DEFAULT)


class DeliveryActivities:
    def __init__(
        self, outbox: Outbox, channels: Mapping[str, Channel] | None = None, pacer: Pacer | None = None
    ) -> None:
        self.outbox = outbox
        self.channels = dict(channels or {})
        # One pacer for every delivery this worker process runs (build_workers makes one DeliveryActivities).
        self.pacer = pacer or Pacer()

    @activity.defn(name="deliver")
    async def deliver(self, delivery: Delivery) -> DeliveryReceipt:
        channel = self.channels.get(delivery.channel)
        if channel is None:
            return await self._to_outbox(delivery)
        # The same fields under the same names; only the text is called `message` in the workflow's model.
        message = Message(text=delivery.message, **delivery.model_dump(exclude={"message"}))
        pace = pace_of(channel, message)
        waited = await self.pacer.wait(delivery.channel, pace, _pacing_cap(), _urgency(delivery))
        if waited:
            log.info("%s -> %s %s: paced %.1fs", delivery.incident, delivery.channel, delivery.target, waited)
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
