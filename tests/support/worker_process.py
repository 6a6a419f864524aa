"""The real worker in its own process, for tests that SIGKILL it.

With TOCSIN_TEST_HANG_AFTER=<text>, the first delivery whose idempotency key contains <text> is written to
the outbox and then hangs, as a vendor call does when its answer is lost: the test kills the worker there
and checks that the retry on a new worker does not deliver twice.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from temporalio import activity

from activities.delivery import DeliveryActivities
from activities.outbox import Outbox
from tocsin.incident.contracts import Delivery, DeliveryReceipt
from tocsin.settings import load_settings
from worker.main import serve


class HangingDelivery(DeliveryActivities):
    def __init__(self, outbox: Outbox, needle: str, marker: Path) -> None:
        super().__init__(outbox)
        self.needle = needle
        self.marker = marker

    @activity.defn(name="deliver")
    async def deliver(self, delivery: Delivery) -> DeliveryReceipt:
        receipt = await super().deliver(delivery)
        if self.needle in delivery.idempotency_key and not self.marker.exists():
            self.marker.write_text(delivery.idempotency_key)
            await asyncio.sleep(3600)
        return receipt


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    settings = load_settings()
    needle = os.environ.get("TOCSIN_TEST_HANG_AFTER")
    delivery = None
    if needle:
        delivery = HangingDelivery(Outbox(settings.outbox_path), needle, settings.home / "hung.marker")
    asyncio.run(serve(settings, delivery))


if __name__ == "__main__":
    main()
