"""Webhooks: a generic JSON webhook for anything else, and a Microsoft Teams incoming webhook.

Both URLs are secrets (a Teams incoming webhook URL, or a Workflows one, carries its own signature; a generic
receiver often takes a token in the path or query), so neither appears in an error, a `check` line or a log
line: errors name the vendor and the status, `check` names the host only, and httpx's own request log line
is redacted for these URLs.

Text: the generic webhook sends the Message as JSON, whose encoding is all the escaping a JSON receiver needs
(what the text becomes after that is the receiver's to escape). A Teams card shows the title and the text as
TextRuns, which Teams never reads as Markdown, and escapes the Markdown of its facts (tocsin.channels.escaping).

Idempotency: the generic webhook sends `Idempotency-Key` (the delivery's key, stable across retries), the
de-facto header (IETF httpapi draft, Stripe) a receiver can de-duplicate on; a receiver that answers
`Idempotent-Replayed: true` is reported as a duplicate. Teams offers nothing of the kind: a retry after a
lost answer can post the card twice, which is accepted (the card carries the delivery key).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

import httpx

from tocsin.channels import _http
from tocsin.channels.base import Message, PermanentDeliveryError, Receipt, RetryableDeliveryError
from tocsin.channels.escaping import plain_text, teams_text
from tocsin.channels.vendor_settings import host_of, http_url, redact, setting

log = logging.getLogger("tocsin.channels.webhook")


class _RedactUrls(logging.Filter):
    """httpx logs every request's full URL at INFO; for webhook URLs that is the secret itself."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.urls:
            return True
        text = record.getMessage()
        clean = text
        for url in self.urls:
            clean = clean.replace(url, f"{urlsplit(url).scheme}://{host_of(url)}/[redacted]")
        if clean != text:
            record.msg, record.args = clean, ()
        return True


_redactor = _RedactUrls()
logging.getLogger("httpx").addFilter(_redactor)


def _hide_url_in_logs(url: str) -> None:
    _redactor.urls.add(url)
    _redactor.urls.add(str(httpx.URL(url)))  # the form httpx logs (normalised)


def _answer_text(response: httpx.Response, limit: int = 200) -> str:
    text = " ".join(response.text.split())
    return text[:limit]


# -- generic JSON webhook --------------------------------------------------------------------------------


class WebhookChannel:
    """POST the message as JSON to `TOCSIN_WEBHOOK_URL`, with `Idempotency-Key: <delivery key>`.

    Any 2xx is delivered; 429 and 5xx retry (429 after Retry-After); any other 4xx is permanent."""

    name: ClassVar[str] = "webhook"
    vendor: ClassVar[str] = "webhook"
    # No vendor limit to honour: a small gap so a burst does not hammer the receiver (one URL, one key).
    min_interval: ClassVar[float] = 0.2

    def __init__(
        self, url: str, *, transport: httpx.AsyncBaseTransport | None = None, timeout: float | None = None
    ) -> None:
        self.url = http_url(url, "TOCSIN_WEBHOOK_URL")
        self._transport = transport
        self._timeout = timeout
        _hide_url_in_logs(self.url)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> WebhookChannel | None:
        url = setting(env, "TOCSIN_WEBHOOK_URL")
        return cls(url) if url else None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(host={host_of(self.url)!r})"

    def _client(self) -> httpx.AsyncClient:
        return _http.client("", transport=self._transport, timeout=self._timeout)

    def payload(self, message: Message) -> dict[str, Any]:
        return {"source": "tocsin", **message.model_dump(mode="json")}

    async def send(self, message: Message) -> Receipt:
        headers = {"Idempotency-Key": message.idempotency_key, "User-Agent": "tocsin"}
        async with self._client() as http:
            response = await _http.send(self.vendor, http.post(self.url, json=self.payload(message), headers=headers))
        _http.raise_for_vendor(self.vendor, response, redact(_answer_text(response), self.url))
        replayed = response.headers.get("Idempotent-Replayed", "").strip().lower() == "true"
        provider_id = response.headers.get("X-Request-Id") or message.idempotency_key
        log.debug("webhook %s: %s %s", host_of(self.url), response.status_code, message.idempotency_key)
        return Receipt(provider_id=provider_id, duplicate=replayed)

    async def check(self) -> str:
        return f"POST to {host_of(self.url)}; a webhook has no side-effect-free check, so nothing was sent"


# -- Microsoft Teams incoming webhook --------------------------------------------------------------------

TeamsCard = Literal["adaptive", "messagecard"]

_SEVERITY_COLOURS = {"sev1": "attention", "sev2": "warning", "sev3": "accent", "sev4": "default"}
_THEME_COLOURS = {"sev1": "D13438", "sev2": "FF8C00", "sev3": "0078D7", "sev4": "8A8886"}
# Connector webhooks have been seen to answer 200 with the failure in the body.
_EMBEDDED_STATUS = re.compile(r"HTTP error (\d{3})")


class TeamsChannel:
    """POST a card to a Teams incoming webhook (`TOCSIN_TEAMS_WEBHOOK_URL`).

    The default payload is an Adaptive Card in a `message` envelope, which both the Microsoft 365 connector
    webhooks and their replacement, Workflows' "When a Teams webhook request is received", accept;
    `card="messagecard"` sends the legacy connector MessageCard instead. Connector webhooks answer 200 with
    body `1`, Workflows 202 with an empty body; both are delivered."""

    name: ClassVar[str] = "teams"
    vendor: ClassVar[str] = "teams"
    # Teams throttles an incoming webhook past a few posts per second; about 1 per second per webhook (one
    # URL per adapter, so one pacing key) stays clear of it.
    min_interval: ClassVar[float] = 1.0

    def __init__(
        self,
        url: str,
        *,
        card: TeamsCard = "adaptive",
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float | None = None,
    ) -> None:
        self.url = http_url(url, "TOCSIN_TEAMS_WEBHOOK_URL")
        self.card = card
        self._transport = transport
        self._timeout = timeout
        _hide_url_in_logs(self.url)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> TeamsChannel | None:
        url = setting(env, "TOCSIN_TEAMS_WEBHOOK_URL")
        if not url:
            return None
        card = (env.get("TOCSIN_TEAMS_CARD") or "adaptive").strip().lower()
        if card not in ("adaptive", "messagecard"):
            raise PermanentDeliveryError("TOCSIN_TEAMS_CARD: 'adaptive' or 'messagecard'")
        return cls(url, card="messagecard" if card == "messagecard" else "adaptive")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(host={host_of(self.url)!r})"

    def _client(self) -> httpx.AsyncClient:
        return _http.client("", transport=self._transport, timeout=self._timeout)

    @staticmethod
    def _title(message: Message) -> str:
        return plain_text(message.title or f"Incident {message.incident}", one_line=True)

    @staticmethod
    def _facts(message: Message) -> list[dict[str, str]]:
        """Fact values are Markdown to Teams: each escaped (the names are Tocsin's own)."""
        facts = [("Incident", message.incident), ("Status", message.status)]
        facts += [(k, v) for k, v in (("Severity", message.severity), ("Service", message.service)) if v]
        facts += [("At", message.at.isoformat()), ("Delivery", message.idempotency_key)]
        return [{"name": k, "value": teams_text(v)} for k, v in facts]

    def payload(self, message: Message) -> dict[str, Any]:
        if self.card == "messagecard":
            # A MessageCard's title and summary are shown unformatted; its text and facts are Markdown.
            return {
                "@type": "MessageCard",
                "@context": "https://schema.org/extensions",
                "summary": self._title(message)[:200],
                "themeColor": _THEME_COLOURS.get(message.severity, "8A8886"),
                "title": self._title(message),
                "text": teams_text(message.text),
                "sections": [{"facts": self._facts(message)}],
            }
        # Title and text as TextRuns in RichTextBlocks, which Adaptive Cards never read as Markdown (a TextBlock
        # would): whatever an alert wrote shows as written, with no link or emphasis of its own.
        title = {
            "type": "TextRun",
            "text": self._title(message),
            "weight": "Bolder",
            "size": "Medium",
            "color": _SEVERITY_COLOURS.get(message.severity, "default"),
        }
        body: list[dict[str, Any]] = [{"type": "RichTextBlock", "inlines": [title]}]
        if message.text.strip():
            body.append({"type": "RichTextBlock", "inlines": [{"type": "TextRun", "text": plain_text(message.text)}]})
        facts = [{"title": f["name"], "value": f["value"]} for f in self._facts(message)]
        card = {
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.4",
            "msteams": {"width": "Full"},
            "body": [*body, {"type": "FactSet", "facts": facts}],
        }
        return {
            "type": "message",
            "attachments": [
                {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
            ],
        }

    async def send(self, message: Message) -> Receipt:
        async with self._client() as http:
            response = await _http.send(self.vendor, http.post(self.url, json=self.payload(message)))
        detail = redact(_answer_text(response), self.url)
        _http.raise_for_vendor(self.vendor, response, detail)
        embedded = _EMBEDDED_STATUS.search(response.text)
        if embedded:
            status = int(embedded.group(1))
            reason = f"{self.vendor} answered {response.status_code} reporting {status}: {detail}"
            if status == 429 or status >= 500:
                raise RetryableDeliveryError(reason, _http.retry_after(response))
            raise PermanentDeliveryError(reason)
        log.debug("teams %s: %s %s", host_of(self.url), response.status_code, message.idempotency_key)
        return Receipt(provider_id=response.headers.get("request-id") or message.idempotency_key)

    async def check(self) -> str:
        return f"POST to {host_of(self.url)}; a webhook has no side-effect-free check, so nothing was sent"
