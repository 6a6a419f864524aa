"""PagerDuty through the Events API v2: trigger, acknowledge and resolve one alert per incident.

`POST {TOCSIN_PAGERDUTY_EVENTS_URL}/v2/enqueue` (default https://events.pagerduty.com) with the integration's
routing key in the body; no other authentication. `dedup_key` is the incident key, so a retried activity,
and every re-page of the same incident, lands on the same PagerDuty alert instead of opening another; the
later triggers appear in the alert's log and PagerDuty's own escalation policy does the re-notifying.

PagerDuty's answers: 202 `{"status": "success", "dedup_key": ...}`; 400 `{"status": "invalid event",
"errors": [...]}` (permanent); 429 (retry later; honoured with its Retry-After when it sends one); 5xx (retry).
The Events API has no endpoint that checks a routing key without sending an event, so `check` validates its
format only.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx

from tocsin.channels import _http
from tocsin.channels.base import Message, PermanentDeliveryError, Receipt
from tocsin.channels.escaping import plain_text
from tocsin.channels.vendor_settings import host_of, http_url, redact, setting

log = logging.getLogger("tocsin.channels.pagerduty")

DEFAULT_EVENTS_URL = "https://events.pagerduty.com"
ENQUEUE_PATH = "/v2/enqueue"
ROUTING_KEY_LENGTH = 32
SUMMARY_LIMIT = 1024
DEDUP_KEY_LIMIT = 255
SEVERITIES = {"sev1": "critical", "sev2": "error", "sev3": "warning", "sev4": "info"}
# A page whose severity is unknown is sent as critical: under "urgency based on severity", lower would make
# it a low-urgency notification, which must not be what an unknown severity silently does to a page.
DEFAULT_SEVERITY = "critical"
ACTIONS = {
    "acknowledged": "acknowledge",
    "acknowledge": "acknowledge",
    "resolved": "resolve",
    "resolve": "resolve",
}
_KEY_SHAPE = re.compile(r"^[A-Za-z0-9]{32}$")


class PagerDutyChannel:
    name: ClassVar[str] = "pagerduty"
    vendor: ClassVar[str] = "pagerduty"
    # Events API v2: 120 events per minute per routing key (one per adapter, so one pacing key).
    min_interval: ClassVar[float] = 0.5

    def __init__(
        self,
        routing_key: str,
        events_url: str = DEFAULT_EVENTS_URL,
        *,
        source: str = "tocsin",
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float | None = None,
    ) -> None:
        self._routing_key = routing_key
        url = http_url(events_url, "TOCSIN_PAGERDUTY_EVENTS_URL").rstrip("/")
        # Either the service's base URL or the full enqueue URL.
        self.events_url = url[: -len(ENQUEUE_PATH)] if url.endswith(ENQUEUE_PATH) else url
        self.source = source
        self._transport = transport
        self._timeout = timeout

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> PagerDutyChannel | None:
        key = setting(env, "TOCSIN_PAGERDUTY_ROUTING_KEY")
        if not key:
            return None
        url = (env.get("TOCSIN_PAGERDUTY_EVENTS_URL") or "").strip() or DEFAULT_EVENTS_URL
        return cls(key, url)

    def __repr__(self) -> str:
        return f"PagerDutyChannel(events_url={self.events_url!r})"

    def _client(self) -> httpx.AsyncClient:
        return _http.client(self.events_url, transport=self._transport, timeout=self._timeout)

    def event(self, message: Message) -> dict[str, Any]:
        """The Events API v2 body for this message (routing key included)."""
        action = ACTIONS.get(message.status, "trigger")
        dedup_key = message.incident[:DEDUP_KEY_LIMIT]
        event: dict[str, Any] = {
            "routing_key": self._routing_key,
            "event_action": action,
            "dedup_key": dedup_key,
        }
        if action != "trigger":
            return event
        # PagerDuty shows the summary as plain text (in its app, texts and calls): one line, no control characters.
        summary = plain_text(message.text or message.title or f"Incident {message.incident}", one_line=True)
        details = {
            "incident": message.incident,
            "target": message.target,
            "title": message.title,
            "severity": message.severity,
            "status": message.status,
            "delivery": message.idempotency_key,
            "text": message.text,
        }
        payload: dict[str, Any] = {
            "summary": summary[:SUMMARY_LIMIT],
            "source": self.source,
            "severity": SEVERITIES.get(message.severity, DEFAULT_SEVERITY),
            "timestamp": message.at.isoformat(),
            "custom_details": {k: v for k, v in details.items() if v},
        }
        if message.service:
            payload["component"] = plain_text(message.service, one_line=True)
        event["payload"] = payload
        event["client"] = "Tocsin"
        return event

    async def send(self, message: Message) -> Receipt:
        event = self.event(message)
        async with self._client() as http:
            response = await _http.send(self.vendor, http.post(ENQUEUE_PATH, json=event))
        _http.raise_for_vendor(self.vendor, response, self._detail(response))
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        dedup_key = answer.get("dedup_key") if isinstance(answer, dict) else None
        log.debug("pagerduty %s %s: %s", event["event_action"], event["dedup_key"], response.status_code)
        return Receipt(provider_id=str(dedup_key or event["dedup_key"]))

    def _detail(self, response: httpx.Response) -> str:
        """PagerDuty's own reason (`status`, `message`, `errors`), with the routing key redacted if echoed."""
        if response.is_success:
            return ""
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if isinstance(answer, dict):
            parts = [str(answer.get(k)) for k in ("status", "message") if answer.get(k)]
            errors = answer.get("errors")
            if isinstance(errors, list) and errors:
                parts.append("; ".join(str(e) for e in errors))
            text = ": ".join(parts)
        else:
            text = " ".join(response.text.split())
        return redact(text[:300], self._routing_key)

    async def check(self) -> str:
        if not _KEY_SHAPE.match(self._routing_key):
            raise PermanentDeliveryError(
                f"TOCSIN_PAGERDUTY_ROUTING_KEY has {len(self._routing_key)} characters; PagerDuty Events API v2 "
                f"integration keys are {ROUTING_KEY_LENGTH} letters and digits"
            )
        where = host_of(self.events_url) + (urlsplit(self.events_url).path or "")
        return (
            f"routing key well-formed ({ROUTING_KEY_LENGTH} characters), events to {where}{ENQUEUE_PATH}; "
            "the Events API has no credential check, so the key itself is proven by the first page"
        )
