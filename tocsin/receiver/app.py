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

`GET /status` and `/status.json` (tocsin/receiver/public_status.py) are public, whatever credentials the alert
endpoints take: they show only titles, components, public status words, impact and times.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from fastapi import FastAPI, Request, Response
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field, TypeAdapter

from tocsin.intake.contracts import IngestResult
from tocsin.intake.sources import GENERIC_BODY, AlertmanagerWebhook, GrafanaWebhook, ReceiverSource
from tocsin.receiver.auth import SIGNATURE_HEADER, TIMESTAMP_HEADER
from tocsin.receiver.config import ReceiverConfig, SignedSource
from tocsin.receiver.enqueue import add_enqueue_route
from tocsin.receiver.gate import Gate, Ingest, Problem, Reject, parse_json, request_body, validate
from tocsin.receiver.heartbeat_routes import HeartbeatReceiver, add_heartbeat_routes
from tocsin.receiver.host_check import LoopbackHostOnly
from tocsin.receiver.link_routes import add_link_routes
from tocsin.receiver.metrics import LatencyMiddleware, ReceiverMetrics
from tocsin.receiver.pagerduty_routes import add_pagerduty_routes
from tocsin.receiver.public_status import StatusPage
from tocsin.receiver.public_status_routes import add_status_routes
from tocsin.receiver.responder_settings import Responders
from tocsin.receiver.slack_routes import add_slack_routes
from tocsin.receiver.twilio_routes import add_twilio_routes

log = logging.getLogger("tocsin.receiver")

HealthCheck = Callable[[], Awaitable[bool]]

ENDPOINTS: dict[ReceiverSource, str] = {
    "alertmanager": "/api/v1/alerts/alertmanager",
    "grafana": "/api/v1/alerts/grafana",
    "pagerduty": "/v2/enqueue",
    "generic": "/api/v1/alerts",
}
PROBLEMS: dict[int | str, dict[str, Any]] = {
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
SUMMARIES: dict[SignedSource, str] = {
    "alertmanager": "Alertmanager webhook (version 4): every alert of the group, firing and resolved",
    "grafana": "Grafana unified alerting webhook contact point",
    "generic": "Tocsin's generic JSON alert: one object or a list",
}


class Accepted(IngestResult):
    """202: the incidents this payload reached, once Temporal has durably accepted the work."""

    truncated_alerts: int | None = Field(
        default=None, description="Alerts the sender left out (its truncatedAlerts); present only when > 0."
    )


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    temporal: Literal["reachable", "unreachable"]


def add_responder_routes(app: FastAPI, responders: Responders) -> None:
    """Where Slack, Twilio, PagerDuty and email links come back to act (tocsin/receiver/*_routes.py, with what
    they share in responder_settings): each vendor answers 404 while its own secret is unset."""
    add_link_routes(app, responders)
    add_pagerduty_routes(app, responders)
    add_slack_routes(app, responders)
    add_twilio_routes(app, responders)


def create_app(
    *,
    ingest: Ingest,
    healthcheck: HealthCheck,
    config: ReceiverConfig | None = None,
    clock: Callable[[], float] = time.time,
    status_page: StatusPage | None = None,
    responders: Responders | None = None,
    heartbeats: HeartbeatReceiver | None = None,
) -> FastAPI:
    """The receiver. `ingest` gets every alert of a valid payload at once and raises TemporalUnavailable when
    Temporal does not accept them; `healthcheck` says whether Temporal answers; `status_page`, when given,
    serves GET /status and /status.json; `responders`, when given, takes the vendors' callbacks (Slack, Twilio,
    PagerDuty, email links: add_responder_routes)."""
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
    if config.open:
        # Added last, so it runs first: a misdirected request reaches nothing, not even the metrics.
        app.add_middleware(LoopbackHostOnly)
    gate = Gate(ingest, config, metrics, clock)
    schemas: dict[str, Any] = {}

    def alert_endpoint(source: SignedSource) -> Callable[[Request], Awaitable[Response]]:
        async def receive(request: Request) -> Response:
            try:
                body = await gate.read_body(request, None if config.open else config.credentials(source))
                batch = validate(source, parse_json(body))
                result = await gate.accept(source, batch)
            except Reject as reject:
                gate.refused(source, request, reject)
                return JSONResponse(reject.problem(), status_code=reject.status, headers=reject.headers)
            answer = Accepted(**result.model_dump(), truncated_alerts=batch.truncated_alerts or None)
            return JSONResponse(answer.model_dump(mode="json", exclude_none=True), status_code=202)

        return receive

    security: list[dict[str, list[str]]] = [{"bearer": []}, {"signature": []}]
    bodies: dict[SignedSource, TypeAdapter[Any]] = {
        "alertmanager": TypeAdapter(AlertmanagerWebhook),
        "grafana": TypeAdapter(GrafanaWebhook),
        "generic": GENERIC_BODY,
    }
    for source, adapter in bodies.items():
        app.add_api_route(
            ENDPOINTS[source],
            alert_endpoint(source),
            methods=["POST"],
            status_code=202,
            summary=SUMMARIES[source],
            operation_id=f"post_{source}",
            responses={202: {"model": Accepted, "description": "Accepted by Temporal"}, **PROBLEMS},
            openapi_extra={**request_body(adapter, schemas), "security": security},
        )
    add_enqueue_route(app, gate, ENDPOINTS["pagerduty"], schemas)

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
        add_status_routes(app, status_page)
    if responders is not None:
        add_responder_routes(app, responders)
    if heartbeats is not None:
        add_heartbeat_routes(app, gate, heartbeats)  # POST /api/v1/heartbeats/<name> (heartbeat_routes.py)

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
