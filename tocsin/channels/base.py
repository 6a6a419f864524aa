"""The one interface every channel adapter implements, and the errors that tell a retry from a give-up.

Adapters are plain async classes that hold their client and configuration; the delivery activity picks one
by channel name and turns these errors into Temporal's retry semantics (permanent → non-retryable,
rate-limited → retry after the vendor's delay). Secrets live in the adapter, never in a Message.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict


class Message(BaseModel):
    """One notification to one target. `idempotency_key` is stable across retries of the same delivery."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    idempotency_key: str
    incident: str
    channel: str
    target: str
    text: str
    title: str = ""
    severity: str = ""
    service: str = ""
    status: str = "triggered"
    at: datetime


class Receipt(BaseModel):
    """What the provider answered: its id for the delivery, and whether it recognised a repeat."""

    provider_id: str
    duplicate: bool = False


class DeliveryError(Exception):
    """Base of the adapters' errors. The message names the vendor, the status and its reason, never a secret."""


class PermanentDeliveryError(DeliveryError):
    """No retry can fix it: 4xx other than 429, a bad address, missing configuration."""


class RetryableDeliveryError(DeliveryError):
    """Try again: 5xx, timeouts, 429. `retry_after` (seconds) is the vendor's own wait, when it gave one."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@runtime_checkable
class Channel(Protocol):
    """A live channel. `check` verifies credentials without sending anything (for `tocsin channels`)."""

    @property
    def name(self) -> str:
        """The channel name escalation steps use: "pagerduty", "slack", "email", "sms", "phone"..."""
        ...

    async def send(self, message: Message) -> Receipt: ...

    async def check(self) -> str: ...
