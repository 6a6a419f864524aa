"""Prometheus metrics of one receiver app, in its own registry (two apps in one process never share counts)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from tocsin.intake.contracts import NormalizedAlert

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SOURCES = ("alertmanager", "grafana", "pagerduty", "generic")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class ReceiverMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.alerts_received = Counter(
            "tocsin_alerts_received",
            "Alerts accepted (answered 202), by source and status (firing, resolved, acknowledge).",
            ["source", "status"],
            registry=self.registry,
        )
        self.incidents_reached = Counter(
            "tocsin_incidents_reached",
            "Incident keys an accepted payload opened or updated, by source.",
            ["source"],
            registry=self.registry,
        )
        self.rejects = Counter(
            "tocsin_ingest_rejects",
            "Payloads refused, by source and reason (unauthorized, too_large, unsupported_media_type, "
            "invalid_json, invalid_payload, untriageable, unknown_routing_key, temporal_unavailable, "
            "temporal_too_large, temporal_refused, temporal_error, internal_error, disconnected).",
            ["source", "reason"],
            registry=self.registry,
        )
        self.truncated = Counter(
            "tocsin_alerts_truncated",
            "Alerts the sender left out of its payloads (Alertmanager's and Grafana's truncatedAlerts).",
            ["source"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "tocsin_http_request_duration_seconds",
            "Receiver request latency, by method, route and status code.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        for source in SOURCES:
            for status in ("firing", "resolved"):
                self.alerts_received.labels(source, status)
            self.incidents_reached.labels(source)

    def accepted(self, source: str, alerts: list[NormalizedAlert], keys: int, truncated: int) -> None:
        for alert in alerts:
            self.alerts_received.labels(source, "acknowledge" if alert.acknowledge else alert.status).inc()
        self.incidents_reached.labels(source).inc(keys)
        if truncated:
            self.truncated.labels(source).inc(truncated)

    def rejected(self, source: str, reason: str) -> None:
        self.rejects.labels(source, reason).inc()


class LatencyMiddleware:
    """Times every HTTP request. The route label is the matched path template, so cardinality stays bounded."""

    def __init__(self, app: ASGIApp, metrics: ReceiverMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def timed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            # An API route's path template; a plain Starlette route (the OpenAPI document, /docs) has a fixed
            # path; anything else (404s) shares one label, so clients cannot mint label values.
            route = getattr(scope.get("route"), "path", None)
            if route is None:
                route = scope.get("path", "unmatched") if "endpoint" in scope else "unmatched"
            method = scope.get("method", "")
            self.metrics.latency.labels(method if method in _METHODS else "other", route, str(status)).observe(
                time.perf_counter() - start
            )
