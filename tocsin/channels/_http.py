"""HTTP plumbing shared by the vendor adapters: one client setup and one reading of vendor status codes."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any

import httpx

from tocsin.channels.base import PermanentDeliveryError, RetryableDeliveryError

TIMEOUT = httpx.Timeout(10.0, connect=5.0)


def client(
    base_url: str,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    timeout: float | None = None,
    **kwargs: Any,
) -> httpx.AsyncClient:
    """No retries inside httpx: every attempt is a Temporal activity attempt, visible in history.
    `timeout` (seconds) replaces the default for tests and slow vendors."""
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(timeout) if timeout is not None else TIMEOUT,
        transport=transport or httpx.AsyncHTTPTransport(retries=0),
        **kwargs,
    )


def retry_after(response: httpx.Response) -> float | None:
    """Retry-After as seconds, from either of its forms (delta-seconds or an HTTP date)."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max((when - datetime.now(UTC)).total_seconds(), 0.0) if when.tzinfo else None


def raise_for_vendor(vendor: str, response: httpx.Response, detail: str = "") -> None:
    """2xx passes; 429 and 5xx are retryable (429 with the vendor's delay); any other 4xx is permanent."""
    if response.is_success:
        return
    reason = f"{vendor} answered {response.status_code}" + (f": {detail}" if detail else "")
    if response.status_code == 429 or response.status_code >= 500:
        raise RetryableDeliveryError(reason, retry_after(response))
    raise PermanentDeliveryError(reason)


async def send(vendor: str, request: Awaitable[httpx.Response]) -> httpx.Response:
    """Await a request, turning transport failures (timeouts, refused connections) into retryable errors."""
    started = time.monotonic()
    try:
        return await request
    except httpx.TimeoutException:
        raise RetryableDeliveryError(f"{vendor} timed out after {time.monotonic() - started:.1f}s") from None
    except httpx.TransportError as err:
        raise RetryableDeliveryError(f"{vendor} unreachable: {type(err).__name__}") from None
