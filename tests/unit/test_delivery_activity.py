"""The delivery activity's live path: a Delivery becomes the adapter's Message, and adapter errors become
Temporal's retry semantics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.delivery import DeliveryActivities
from activities.outbox import Outbox
from tocsin.channels.base import Message, PermanentDeliveryError, Receipt, RetryableDeliveryError
from tocsin.incident.contracts import Delivery

DELIVERY = Delivery(
    idempotency_key="incident-k/abc/page/0/1",
    incident="k",
    channel="sms",
    target="+4915100000001",
    message="please acknowledge",
    at=datetime(2026, 11, 27, 12, 0, tzinfo=UTC),
    title="Checkout down",
    severity="sev1",
    service="checkout",
)


class Recording:
    name = "sms"

    def __init__(self, error: Exception | None = None) -> None:
        self.sent: list[Message] = []
        self.error = error

    async def send(self, message: Message) -> Receipt:
        self.sent.append(message)
        if self.error:
            raise self.error
        return Receipt(provider_id="SM123")

    async def check(self) -> str:
        return "ok"


async def test_a_live_channel_gets_every_field_and_nothing_reaches_the_outbox(tmp_path: Path) -> None:
    channel = Recording()
    outbox = Outbox(tmp_path / "outbox.jsonl")
    receipt = await ActivityEnvironment().run(DeliveryActivities(outbox, {"sms": channel}).deliver, DELIVERY)
    assert receipt.provider_id == "SM123"
    (message,) = channel.sent
    assert message.text == "please acknowledge"
    assert message.model_dump(exclude={"text"}) == DELIVERY.model_dump(exclude={"message"})
    assert outbox.read() == []


@pytest.mark.parametrize(
    ("error", "non_retryable", "delay"),
    [
        (PermanentDeliveryError("twilio answered 400"), True, None),
        (RetryableDeliveryError("twilio answered 429", retry_after=7), False, timedelta(seconds=7)),
    ],
)
async def test_adapter_errors_become_retry_semantics(
    tmp_path: Path, error: Exception, non_retryable: bool, delay: timedelta | None
) -> None:
    activities = DeliveryActivities(Outbox(tmp_path / "outbox.jsonl"), {"sms": Recording(error)})
    with pytest.raises(ApplicationError) as raised:
        await ActivityEnvironment().run(activities.deliver, DELIVERY)
    assert raised.value.non_retryable is non_retryable
    assert raised.value.next_retry_delay == delay
    assert str(error) in str(raised.value)
