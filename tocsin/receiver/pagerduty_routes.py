"""`POST /api/v1/pagerduty/webhooks`: PagerDuty's webhooks (v3) acting on the incident that paged through it.

In order: TOCSIN_PAGERDUTY_WEBHOOK_SECRET unset → 404 naming it; a body over MAX_BODY → 413; no signature that
matches a secret → 401, nothing read further; a body that is not a v3 envelope → 400. Then 200 for everything
PagerDuty should not send again, acted on or not: an event type Tocsin does not act on, an incident Tocsin did
not open, an agent that is not a person or not in the roster (logged), a refusal by the incident (already
resolved). PagerDuty drops a delivery on a 4xx and retries a 5xx, so only Temporal being unreachable answers
503: the same event then comes back with the same id and still lands once.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from tocsin.intake.contracts import TemporalUnavailable
from tocsin.receiver.gate import RETRY_AFTER_SECONDS
from tocsin.receiver.responder_settings import PAGERDUTY_SECRET, Responders, not_configured
from tocsin.responders.contracts import NotActed
from tocsin.responders.pagerduty import SIGNATURE_HEADER, Ignored, MalformedWebhook, action_for, parse, verify

log = logging.getLogger("tocsin.receiver.pagerduty")

PATH = "/api/v1/pagerduty/webhooks"
# PagerDuty guarantees webhooks up to 55 KB and delivers up to 256 KB on a best-effort basis; it drops larger.
MAX_BODY = 256 * 1024


class _TooLarge(Exception):
    pass


async def _read(request: Request) -> bytes:
    """The raw body (the signature covers its exact bytes), refused past MAX_BODY before it is all read."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BODY:
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _problem(status: int, reason: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"reason": reason, "message": message}, status_code=status, headers=headers)


def _not_acted(reason: str, message: str) -> JSONResponse:
    return JSONResponse({"acted": False, "reason": reason, "message": message})


def add_pagerduty_routes(app: FastAPI, responders: Responders) -> None:
    secrets = responders.secrets.pagerduty_webhook_secrets

    @app.post(PATH, summary="PagerDuty webhooks v3: acknowledged, resolved, escalated, reassigned", status_code=200)
    async def pagerduty_webhook(request: Request) -> Response:
        if not secrets:
            return not_configured("PagerDuty", PAGERDUTY_SECRET)
        client = request.client.host if request.client else "?"
        try:
            body = await _read(request)
        except _TooLarge:
            return _problem(413, "too_large", f"body: larger than {MAX_BODY} bytes")
        except ClientDisconnect:
            return _problem(400, "disconnected", "the client went away before sending the whole body")
        if not verify(secrets, request.headers.get(SIGNATURE_HEADER), body):
            # Not PagerDuty, or a secret Tocsin does not hold: say so in the log, never what was sent.
            log.warning("pagerduty webhook from %s: no valid %s; nothing acted on", client, SIGNATURE_HEADER)
            return _problem(401, "unauthorized", f"{SIGNATURE_HEADER}: no signature matches a configured secret")
        try:
            event = parse(body)
            action = action_for(event, responders.roster)
        except MalformedWebhook as err:
            log.warning("pagerduty webhook from %s: %s", client, err)
            return _problem(400, "malformed", str(err))
        if isinstance(action, Ignored):
            level = logging.WARNING if action.kind == "unknown_person" else logging.INFO
            log.log(level, "pagerduty %s %s: ignored: %s", event.event_type, event.id, action.reason)
            return _not_acted(action.kind, action.reason)
        try:
            outcome = await responders.act(action)
        except NotActed as err:
            # Already acknowledged, resolved and closed, no such incident: retrying would not change the answer.
            log.info("pagerduty %s %s on %s: not acted: %s", event.event_type, event.id, action.key, err.reason)
            return _not_acted(err.kind, err.reason)
        except TemporalUnavailable as err:
            log.warning("pagerduty %s %s: Temporal unavailable: %s", event.event_type, event.id, err)
            return _problem(
                503,
                "temporal_unavailable",
                "Temporal did not take the action; PagerDuty will deliver it again",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        except Exception:
            log.exception("pagerduty %s %s on %s failed", event.event_type, event.id, action.key)
            return _problem(500, "internal_error", "the receiver failed to act on the webhook; see its log")
        log.info("pagerduty %s %s: %s as %s on %s", event.event_type, event.id, action.verb, action.person, action.key)
        return JSONResponse(
            {"acted": True, "key": outcome.key, "status": outcome.status, "message": outcome.message},
        )
