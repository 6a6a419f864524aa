"""The alert receiver: an HTTP front door for Alertmanager, Grafana, PagerDuty Events v2 senders and plain JSON.

`create_app` gets its two ways into Temporal injected (`ingest` and `healthcheck`), so this module has no
Temporal code and tests drive it with fakes. Every request goes through the same gate, in this order:

1. credentials (bearer token or HMAC signature; `/v2/enqueue`: the routing key, step 4) → 401
2. `Content-Type: application/json` (charset utf-8 if given) → 415
3. body size, from Content-Length and again while reading a chunked body → 413, before any parsing
4. JSON, then the source's schema → 422 with field paths (`/v2/enqueue`: 400 and 404, as PagerDuty)
5. `ingest(alerts)`: only now, with the whole payload valid, so a rejected payload changes nothing. It plans
   every incident key before its first Temporal call: an alert triage cannot place → 422 (`untriageable`),
   nothing sent. Temporal unreachable or overloaded → 503 with `Retry-After` (Alertmanager and PagerDuty
   senders retry on 5xx); Temporal refusing for good → 413 (`temporal_too_large`), 422 (`temporal_refused`)
   or 500 (`temporal_error`, the receiver's own setup), never a 503 that would have it sent again forever

and is answered 202 with the incident keys once Temporal has durably accepted the work.

`GET /status` and `/status.json` (tocsin/receiver/status_page.py) are public, whatever credentials the alert
endpoints take: they show only titles, components, public status words, impact and times.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import pydantic_core
from fastapi import FastAPI, Request, Response
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field, TypeAdapter, ValidationError
from starlette.requests import ClientDisconnect

from tocsin.intake.models import (
    IngestResult,
    IntakeRefused,
    NormalizedAlert,
    TemporalRefusal,
    TemporalRefused,
    TemporalUnavailable,
)
from tocsin.intake.normalize import Batch, normalize
from tocsin.intake.sources import (
    GENERIC_BODY,
    PAGERDUTY_ROUTING_KEY_LENGTH,
    AlertmanagerWebhook,
    GrafanaWebhook,
    PagerDutyFollowUp,
    PagerDutyTrigger,
    ReceiverSource,
    describe_errors,
)
from tocsin.receiver.auth import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Unauthorized,
    authorize_headers,
    challenge,
    routing_key_known,
)
from tocsin.receiver.config import Credentials, ReceiverConfig, SignedSource
from tocsin.receiver.metrics import LatencyMiddleware, ReceiverMetrics
from tocsin.receiver.status_page import StatusPage, StatusUnavailable, StatusView

log = logging.getLogger("tocsin.receiver")

Ingest = Callable[[list[NormalizedAlert]], Awaitable[IngestResult]]
HealthCheck = Callable[[], Awaitable[bool]]

ENDPOINTS: dict[ReceiverSource, str] = {
    "alertmanager": "/api/v1/alerts/alertmanager",
    "grafana": "/api/v1/alerts/grafana",
    "pagerduty": "/v2/enqueue",
    "generic": "/api/v1/alerts",
}
RETRY_AFTER_SECONDS = 5
# A permanent refusal from Temporal: its status and `reason`. Only TemporalUnavailable is a 503.
TEMPORAL_REFUSALS: dict[TemporalRefusal, tuple[int, str]] = {
    "too_large": (413, "temporal_too_large"),
    "invalid": (422, "temporal_refused"),
    "failed": (500, "temporal_error"),
}
# The status page is public and may sit behind a CDN: short caching, and no script may ever run in it.
STATUS_HEADERS = {
    "Cache-Control": "public, max-age=10",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}
STATUS_DOWN_HTML = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="60">'
    "<title>Status unavailable</title></head><body><p>The status is unavailable right now. "
    "This page tries again every minute.</p></body></html>"
)


class Accepted(IngestResult):
    """202: the incidents this payload reached, once Temporal has durably accepted the work."""

    truncated_alerts: int | None = Field(
        default=None, description="Alerts the sender left out (its truncatedAlerts); present only when > 0."
    )


class Problem(BaseModel):
    """Every refusal: a stable `reason` (also the metric label), a message, and for 422 every field error."""

    reason: str
    message: str
    errors: list[str] | None = None


class PagerDutyAnswer(BaseModel):
    """PagerDuty's own answer shape: `success` with the dedup_key, or `invalid event` with `errors`."""

    status: str
    message: str
    dedup_key: str | None = None
    errors: list[str] | None = None


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    temporal: Literal["reachable", "unreachable"]


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


def _parse_json(body: bytes) -> object:
    try:
        # jiter: bounded nesting, strict UTF-8, no NaN/Infinity; a ValueError for anything it refuses.
        return pydantic_core.from_json(body, allow_inf_nan=False)
    except ValueError as err:
        raise Reject(422, "invalid_json", f"body: invalid JSON: {err}") from None


def _validate(source: ReceiverSource, data: object) -> Batch:
    try:
        return normalize(source, data)
    except ValidationError as err:
        errors = describe_errors(err)
        raise Reject(422, "invalid_payload", errors[0], errors=errors) from None


def _request_body(adapter: TypeAdapter[Any], refs: dict[str, Any]) -> dict[str, Any]:
    schema = adapter.json_schema(ref_template="#/components/schemas/{model}")
    refs.update(schema.pop("$defs", {}))
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def create_app(
    *,
    ingest: Ingest,
    healthcheck: HealthCheck,
    config: ReceiverConfig | None = None,
    clock: Callable[[], float] = time.time,
    status_page: StatusPage | None = None,
) -> FastAPI:
    """The receiver. `ingest` gets every alert of a valid payload at once and raises TemporalUnavailable when
    Temporal does not accept them; `healthcheck` says whether Temporal answers; `status_page`, when given,
    serves GET /status and /status.json."""
    config = config or ReceiverConfig()
    metrics = ReceiverMetrics()
    app = FastAPI(
        title="Tocsin alert receiver",
        version="1",
        description=__doc__ or "",
        redoc_url=None,
    )
    app.state.metrics = metrics
    app.state.config = config
    app.add_middleware(LatencyMiddleware, metrics=metrics)
    schemas: dict[str, Any] = {}

    async def read_body(request: Request, creds: Credentials | None) -> bytes:
        pending = None
        challenge_header = {"WWW-Authenticate": challenge(creds)} if creds is not None else None
        if creds is not None:
            try:
                pending = authorize_headers(creds, request.headers, clock(), config.replay_window)
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

    async def accept(source: ReceiverSource, batch: Batch) -> IngestResult:
        if not batch.alerts:
            result = IngestResult(keys=[], alerts=0, opened_or_updated=0)
        else:
            try:
                result = await ingest(batch.alerts)
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
        metrics.accepted(source, batch.alerts, len(result.keys), batch.truncated_alerts)
        if batch.truncated_alerts:
            log.warning(
                "%s: the sender left %d alerts out of its payload (truncatedAlerts); they were not received",
                source,
                batch.truncated_alerts,
            )
        return result

    def refused(source: ReceiverSource, request: Request, reject: Reject) -> None:
        metrics.rejected(source, reject.reason)
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

    def alert_endpoint(source: SignedSource) -> Callable[[Request], Awaitable[Response]]:
        async def receive(request: Request) -> Response:
            try:
                body = await read_body(request, None if config.open else config.credentials(source))
                batch = _validate(source, _parse_json(body))
                result = await accept(source, batch)
            except Reject as reject:
                refused(source, request, reject)
                return JSONResponse(reject.problem(), status_code=reject.status, headers=reject.headers)
            answer = Accepted(**result.model_dump(), truncated_alerts=batch.truncated_alerts or None)
            return JSONResponse(answer.model_dump(mode="json", exclude_none=True), status_code=202)

        return receive

    problems: dict[int | str, dict[str, Any]] = {
        401: {"model": Problem, "description": "Missing or wrong credentials (with WWW-Authenticate)"},
        413: {"model": Problem, "description": "Body over TOCSIN_INGEST_MAX_BYTES, or over Temporal's payload limit"},
        415: {"model": Problem, "description": "Content-Type is not application/json"},
        422: {
            "model": Problem,
            "description": "Invalid JSON or schema (`errors` names each field path) or an alert triage cannot "
            "place (untriageable): nothing was sent; or a request Temporal refuses for good (temporal_refused)",
        },
        500: {"model": Problem, "description": "Temporal refused the receiver itself (temporal_error), or a bug"},
        503: {"model": Problem, "description": "Temporal is unreachable or overloaded; retry (Retry-After)"},
    }
    security: list[dict[str, list[str]]] = [{"bearer": []}, {"signature": []}]
    bodies: dict[SignedSource, TypeAdapter[Any]] = {
        "alertmanager": TypeAdapter(AlertmanagerWebhook),
        "grafana": TypeAdapter(GrafanaWebhook),
        "generic": GENERIC_BODY,
    }
    summaries = {
        "alertmanager": "Alertmanager webhook (version 4): every alert of the group, firing and resolved",
        "grafana": "Grafana unified alerting webhook contact point",
        "generic": "Tocsin's generic JSON alert: one object or a list",
    }
    for source, adapter in bodies.items():
        app.add_api_route(
            ENDPOINTS[source],
            alert_endpoint(source),
            methods=["POST"],
            status_code=202,
            summary=summaries[source],
            operation_id=f"post_{source}",
            responses={202: {"model": Accepted, "description": "Accepted by Temporal"}, **problems},
            openapi_extra={**_request_body(adapter, schemas), "security": security},
        )

    pagerduty_status = {400: "invalid event", 404: "invalid event", 413: "invalid event", 415: "invalid event"}
    pagerduty_message = {
        400: "Event object is invalid",
        404: "Unknown routing key",
        413: "Event object is too large",
        415: "Event object is invalid",
    }

    @app.post(
        ENDPOINTS["pagerduty"],
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
        openapi_extra=_request_body(TypeAdapter(PagerDutyTrigger | PagerDutyFollowUp), schemas),
    )
    async def enqueue(request: Request) -> Response:
        try:
            body = await read_body(request, None)  # authenticated by the routing key, below
            data = _parse_json(body)
            if not config.open:
                key = data.get("routing_key") if isinstance(data, dict) else None
                # A malformed key is a schema error (400, as PagerDuty); a well-formed unknown one is a 404.
                if (
                    isinstance(key, str)
                    and len(key) == PAGERDUTY_ROUTING_KEY_LENGTH
                    and not routing_key_known(config.pagerduty_routing_keys, key)
                ):
                    raise Reject(404, "unknown_routing_key", "routing_key: not a configured integration key")
            batch = _validate("pagerduty", data)
            await accept("pagerduty", batch)
        except Reject as reject:
            refused("pagerduty", request, reject)
            status = 400 if reject.status == 422 else reject.status
            answer = PagerDutyAnswer(
                status=pagerduty_status.get(status, "error"),
                message=pagerduty_message.get(status, reject.message),
                errors=reject.errors or [reject.message],
            )
            return JSONResponse(answer.model_dump(exclude_none=True), status_code=status, headers=reject.headers)
        answer = PagerDutyAnswer(status="success", message="Event processed", dedup_key=batch.alerts[0].dedup_key)
        return JSONResponse(answer.model_dump(exclude_none=True), status_code=202)

    @app.get(
        "/healthz",
        summary="200 when Temporal answers, 503 when it does not",
        response_model=Health,
        responses={503: {"model": Health, "description": "Temporal is unreachable"}},
    )
    async def healthz() -> Response:
        try:
            async with asyncio.timeout(config.health_timeout):
                healthy = await healthcheck()
        except Exception as err:  # unreachable, refused, timed out: all mean "not healthy", none is a crash
            log.warning("health check: Temporal unreachable: %s", str(err) or type(err).__name__)
            healthy = False
        health = Health(status="ok" if healthy else "unavailable", temporal="reachable" if healthy else "unreachable")
        return JSONResponse(health.model_dump(), status_code=200 if healthy else 503)

    @app.get(
        "/metrics",
        summary="Prometheus metrics of this receiver",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"}},
    )
    async def metrics_endpoint() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    if status_page is not None:
        down_headers = {**STATUS_HEADERS, "Cache-Control": "no-store"}
        # A failed look-up is remembered for the cache period too: a Temporal outage is not hammered either.
        down_headers["Retry-After"] = str(max(int(status_page.config.cache_seconds), 1))

        @app.get(
            "/status.json",
            summary="Public status: current incidents, components, recent history (no credentials needed)",
            response_model=StatusView,
            responses={503: {"model": Problem, "description": "Temporal is unreachable"}},
        )
        async def status_json() -> Response:
            try:
                view = await status_page.view()
            except StatusUnavailable as err:
                problem = Problem(reason="temporal_unavailable", message=str(err))
                return JSONResponse(problem.model_dump(exclude_none=True), status_code=503, headers=down_headers)
            return JSONResponse(view.model_dump(mode="json"), headers=STATUS_HEADERS)

        @app.get(
            "/status",
            summary="Public status page (HTML, reloads every minute; no credentials needed)",
            response_class=HTMLResponse,
            responses={503: {"content": {"text/html": {}}, "description": "Temporal is unreachable"}},
        )
        async def status_html() -> Response:
            try:
                view = await status_page.view()
            except StatusUnavailable:
                return HTMLResponse(STATUS_DOWN_HTML, status_code=503, headers=down_headers)
            return HTMLResponse(status_page.html(view), headers=STATUS_HEADERS)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            components = document.setdefault("components", {})
            components.setdefault("schemas", {}).update(schemas)
            components["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer", "description": "TOCSIN_INGEST_TOKEN"},
                "signature": {
                    "type": "apiKey",
                    "in": "header",
                    "name": SIGNATURE_HEADER,
                    "description": f"sha256=<hex HMAC-SHA256 of '<{TIMESTAMP_HEADER}>.<body>'>, "
                    "with TOCSIN_INGEST_HMAC_SECRET; the timestamp within 5 minutes",
                },
            }
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
