"""`POST /v2/enqueue`: PagerDuty's Events API v2, so anything that pages PagerDuty can page Tocsin instead.

It goes through the same gate as the other alert endpoints (tocsin/receiver/gate.py) but is authenticated by
the event's routing key rather than a token or signature, and answers in PagerDuty's own shape and statuses:
a schema error is a 400 (not 422) and an unknown routing key a 404, because PagerDuty's senders expect that.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, TypeAdapter

from tocsin.intake.sources import PAGERDUTY_ROUTING_KEY_LENGTH, PagerDutyFollowUp, PagerDutyTrigger
from tocsin.receiver.auth import routing_key_known
from tocsin.receiver.gate import Gate, Reject, parse_json, request_body, validate

PAGERDUTY_STATUS = {400: "invalid event", 404: "invalid event", 413: "invalid event", 415: "invalid event"}
PAGERDUTY_MESSAGE = {
    400: "Event object is invalid",
    404: "Unknown routing key",
    413: "Event object is too large",
    415: "Event object is invalid",
}


class PagerDutyAnswer(BaseModel):
    """PagerDuty's own answer shape: `success` with the dedup_key, or `invalid event` with `errors`."""

    status: str
    message: str
    dedup_key: str | None = None
    errors: list[str] | None = None


def add_enqueue_route(app: FastAPI, gate: Gate, path: str, schemas: dict[str, Any]) -> None:
    """Register `POST path`; the request schemas it refers to are collected in `schemas` for the document."""
    config = gate.config

    @app.post(
        path,
        status_code=202,
        summary="PagerDuty Events API v2 compatible: change a sender's PagerDuty URL to this one",
        operation_id="post_pagerduty_enqueue",
        responses={
            202: {"model": PagerDutyAnswer, "description": '`{"status":"success","message":"Event processed",...}`'},
            400: {"model": PagerDutyAnswer, "description": "Invalid JSON or event (PagerDuty answers 400, not 422)"},
            404: {"model": PagerDutyAnswer, "description": "routing_key is not one of TOCSIN_PAGERDUTY_ROUTING_KEYS"},
            413: {"model": PagerDutyAnswer, "description": "Body over TOCSIN_INGEST_MAX_BYTES, or Temporal's limit"},
            415: {"model": PagerDutyAnswer, "description": "Content-Type is not application/json"},
            500: {"model": PagerDutyAnswer, "description": "Temporal refused the receiver itself, or a bug"},
            503: {"model": PagerDutyAnswer, "description": "Temporal is unreachable or overloaded; retry"},
        },
        openapi_extra=request_body(TypeAdapter(PagerDutyTrigger | PagerDutyFollowUp), schemas),
    )
    async def enqueue(request: Request) -> Response:
        try:
            body = await gate.read_body(request, None)  # authenticated by the routing key, below
            data = parse_json(body)
            if not config.open:
                key = data.get("routing_key") if isinstance(data, dict) else None
                # A malformed key is a schema error (400, as PagerDuty); a well-formed unknown one is a 404.
                if (
                    isinstance(key, str)
                    and len(key) == PAGERDUTY_ROUTING_KEY_LENGTH
                    and not routing_key_known(config.pagerduty_routing_keys, key)
                ):
                    raise Reject(404, "unknown_routing_key", "routing_key: not a configured integration key")
            batch = validate("pagerduty", data)
            await gate.accept("pagerduty", batch)
        except Reject as reject:
            gate.refused("pagerduty", request, reject)
            status = 400 if reject.status == 422 else reject.status
            answer = PagerDutyAnswer(
                status=PAGERDUTY_STATUS.get(status, "error"),
                message=PAGERDUTY_MESSAGE.get(status, reject.message),
                errors=reject.errors or [reject.message],
            )
            return JSONResponse(answer.model_dump(exclude_none=True), status_code=status, headers=reject.headers)
        answer = PagerDutyAnswer(status="success", message="Event processed", dedup_key=batch.alerts[0].dedup_key)
        return JSONResponse(answer.model_dump(exclude_none=True), status_code=202)
