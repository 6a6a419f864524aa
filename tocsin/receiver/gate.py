"""The gate every alert post goes through (tocsin/receiver/app.py lists its order): credentials, content type,
size, JSON, schema, then ingest, and the one refusal (`Reject`, answered as a `Problem`) for each way to fail.

Shared by the signed endpoints (app.py) and PagerDuty's `/v2/enqueue` (enqueue.py), which answers the same
refusals in PagerDuty's own shape.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pydantic_core
from fastapi import Request
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.requests import ClientDisconnect

from tocsin.intake.contracts import (
    IngestResult,
    IntakeRefused,
    NormalizedAlert,
    TemporalRefusal,
    TemporalRefused,
    TemporalUnavailable,
)
from tocsin.intake.normalize import Batch, normalize
from tocsin.intake.sources import ReceiverSource, describe_errors
from tocsin.receiver.auth import Unauthorized, authorize_headers, challenge
from tocsin.receiver.config import Credentials, ReceiverConfig
from tocsin.receiver.metrics import ReceiverMetrics

log = logging.getLogger("tocsin.receiver")

Ingest = Callable[[list[NormalizedAlert]], Awaitable[IngestResult]]

RETRY_AFTER_SECONDS = 5
# A permanent refusal from Temporal: its status and `reason`. Only TemporalUnavailable is a 503.
TEMPORAL_REFUSALS: dict[TemporalRefusal, tuple[int, str]] = {
    "too_large": (413, "temporal_too_large"),
    "invalid": (422, "temporal_refused"),
    "failed": (500, "temporal_error"),
}


class Problem(BaseModel):
    """Every refusal: a stable `reason` (also the metric label), a message, and for 422 every field error."""

    reason: str
    message: str
    errors: list[str] | None = None


class Reject(Exception):
    def __init__(
        self,
        status: int,
        reason: str,
        message: str,
        errors: list[str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.errors = errors
        self.headers = headers

    def problem(self) -> dict[str, Any]:
        return Problem(reason=self.reason, message=self.message, errors=self.errors).model_dump(exclude_none=True)


def _json_content_type(value: str | None) -> bool:
    if not value:
        return False
    mime, _, params = value.partition(";")
    if mime.strip().lower() != "application/json":
        return False
    for param in params.split(";"):
        name, _, charset = param.partition("=")
        if name.strip().lower() == "charset" and charset.strip().strip('"').lower() not in ("utf-8", "utf8"):
            return False
    return True


def parse_json(body: bytes) -> object:
    try:
        # jiter: bounded nesting, strict UTF-8, no NaN/Infinity; a ValueError for anything it refuses.
        return pydantic_core.from_json(body, allow_inf_nan=False)
    except ValueError as err:
        raise Reject(422, "invalid_json", f"body: invalid JSON: {err}") from None


def validate(source: ReceiverSource, data: object) -> Batch:
    try:
        return normalize(source, data)
    except ValidationError as err:
        errors = describe_errors(err)
        raise Reject(422, "invalid_payload", errors[0], errors=errors) from None


def request_body(adapter: TypeAdapter[Any], refs: dict[str, Any]) -> dict[str, Any]:
    """An endpoint's OpenAPI requestBody; the schemas it refers to are collected in `refs`."""
    schema = adapter.json_schema(ref_template="#/components/schemas/{model}")
    refs.update(schema.pop("$defs", {}))
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


class Gate:
    """The steps of the gate that need the app's configuration, metrics, clock and ingest."""

    def __init__(
        self, ingest: Ingest, config: ReceiverConfig, metrics: ReceiverMetrics, clock: Callable[[], float]
    ) -> None:
        self.ingest = ingest
        self.config = config
        self.metrics = metrics
        self.clock = clock

    async def read_body(self, request: Request, creds: Credentials | None) -> bytes:
        config = self.config
        pending = None
        challenge_header = {"WWW-Authenticate": challenge(creds)} if creds is not None else None
        if creds is not None:
            try:
                pending = authorize_headers(creds, request.headers, self.clock(), config.replay_window)
            except Unauthorized as err:
                raise Reject(401, "unauthorized", str(err), headers=challenge_header) from None
        if not _json_content_type(request.headers.get("content-type")):
            raise Reject(415, "unsupported_media_type", "Content-Type must be application/json")
        too_large = Reject(413, "too_large", f"body: larger than {config.max_bytes} bytes")
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > config.max_bytes:
            raise too_large
        chunks = []
        size = 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > config.max_bytes:
                    raise too_large
                chunks.append(chunk)
        except ClientDisconnect:
            raise Reject(400, "disconnected", "the client went away before sending the whole body") from None
        body = b"".join(chunks)
        if pending is not None:
            try:
                pending.verify(body)
            except Unauthorized as err:
                raise Reject(401, "unauthorized", str(err), headers=challenge_header) from None
        return body

    async def accept(self, source: ReceiverSource, batch: Batch) -> IngestResult:
        if not batch.alerts:
            result = IngestResult(keys=[], alerts=0, opened_or_updated=0)
        else:
            try:
                result = await self.ingest(batch.alerts)
            except TemporalUnavailable as err:
                raise Reject(
                    503,
                    "temporal_unavailable",
                    str(err) or "Temporal did not accept the alerts",
                    headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
                ) from None
            except IntakeRefused as err:
                raise Reject(422, "untriageable", str(err), errors=err.errors) from None
            except TemporalRefused as err:
                status, reason = TEMPORAL_REFUSALS[err.kind]
                raise Reject(status, reason, str(err)) from None
            except Exception:
                log.exception("%s: ingesting %d alerts failed", source, len(batch.alerts))
                raise Reject(500, "internal_error", "the receiver failed to ingest the alerts; see its log") from None
        self.metrics.accepted(source, batch.alerts, len(result.keys), batch.truncated_alerts)
        if batch.truncated_alerts:
            log.warning(
                "%s: the sender left %d alerts out of its payload (truncatedAlerts); they were not received",
                source,
                batch.truncated_alerts,
            )
        return result

    def refused(self, source: ReceiverSource, request: Request, reject: Reject) -> None:
        self.metrics.rejected(source, reject.reason)
        client = request.client.host if request.client else "?"
        level = logging.WARNING if reject.status >= 500 else logging.INFO
        log.log(
            level,
            "%s: refused a post from %s (%d %s): %s",
            source,
            client,
            reject.status,
            reject.reason,
            reject.message,
        )
