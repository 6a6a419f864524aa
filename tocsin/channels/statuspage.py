"""Atlassian Statuspage: one public incident per Tocsin incident, opened, updated and resolved; component status.

Configuration (each may instead be read from the file `NAME_FILE` names): `TOCSIN_STATUSPAGE_API_KEY`,
`TOCSIN_STATUSPAGE_PAGE_ID`, `TOCSIN_STATUSPAGE_API_URL` (default https://api.statuspage.io/v1) and, optionally,
`TOCSIN_STATUSPAGE_COMPONENTS`: `service=component_id` pairs, comma-separated, so that a message for `checkout`
also sets the status of the page's checkout component. A target of the form `component:<id>` names the
component directly.

What it publishes is curated by the policy's `status_page:` section (tocsin/policy/status_page.py), read from the
worker's own policy file (`TOCSIN_POLICY`), never from the delivery: an incident whose service is not one of its
`components` (or `TOCSIN_STATUS_COMPONENTS`) is not published at all (the receipt says `statuspage:not-public`);
a listed one gets the policy's title for its severity ("Major outage on checkout") and update sentences that
name the component and nothing else. The incident's title and the delivery's text (alert summaries, i.e.
whatever an alert sender wrote) never leave Tocsin.

Requests (`Authorization: OAuth <key>`):

- `GET  /pages/{page_id}/incidents/unresolved`: find this Tocsin incident's open Statuspage incident.
- `POST /pages/{page_id}/incidents`: open one, `{"incident": {"name", "status", "body", "metadata", ...}}`.
- `PATCH /pages/{page_id}/incidents/{id}`: a later status (identified, monitoring, resolved) and its words.
- `PATCH /pages/{page_id}/components/{id}`: `{"component": {"status": ...}}`.
- `GET  /pages/{page_id}`: `check`, which changes nothing.

Idempotency: Statuspage takes no idempotency key, so each incident carries private metadata
`{"tocsin": {"incident": <a hash of the incident key>, "deliveries": <short hashes of the deliveries applied>}}`
(metadata is never shown on the public page, and the key, made of label values, is not sent at all). Before
writing, the adapter lists the unresolved incidents and matches that reference: a delivery already applied (a
retry after a lost response) writes nothing and gets a duplicate receipt; a new one updates that incident
instead of opening another.

Errors: 420 and 429 (Statuspage's two rate-limit answers; one request a second per key) and 5xx retry, with
Retry-After when given; any other 4xx is permanent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

from tocsin.channels import _http
from tocsin.channels.base import Message, PermanentDeliveryError, Receipt, RetryableDeliveryError
from tocsin.channels.vendor_settings import http_url, setting
from tocsin.policy.loader import worker_status_page
from tocsin.policy.status_page import StatusPagePolicy, public_update

VENDOR = "statuspage"
DEFAULT_API_URL = "https://api.statuspage.io/v1"
METADATA_KEY = "tocsin"
REMEMBERED_DELIVERIES = 20

# Tocsin's incident status -> Statuspage's realtime incident status.
INCIDENT_STATUS = {
    "triggered": "investigating",
    "acknowledged": "identified",
    "mitigated": "monitoring",
    "resolved": "resolved",
}
# Severity -> the component status while the incident is open.
COMPONENT_STATUS = {"sev1": "major_outage", "sev2": "partial_outage"}


def incident_ref(incident_key: str) -> str:
    """The incident as Statuspage knows it: its key is made of label values, which may name internal systems."""
    return hashlib.sha256(f"tocsin-incident:{incident_key}".encode()).hexdigest()[:32]


def delivery_mark(idempotency_key: str) -> str:
    """A short, stable stand-in for a delivery's key in the incident's metadata."""
    return hashlib.sha256(idempotency_key.encode()).hexdigest()[:16]


def component_status(message: Message) -> str:
    if message.status == "resolved":
        return "operational"
    if message.status == "mitigated":
        return "degraded_performance"
    return COMPONENT_STATUS.get(message.severity, "degraded_performance")


class Statuspage:
    """The `statuspage` channel."""

    name = "statuspage"
    # Statuspage's documented limit: 1 request per second per API token (one per adapter, one pacing key).
    min_interval: ClassVar[float] = 1.0

    def __init__(
        self,
        api_key: str,
        page_id: str,
        api_url: str = DEFAULT_API_URL,
        *,
        components: Mapping[str, str] | None = None,
        public: StatusPagePolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not api_key or not page_id:
            raise PermanentDeliveryError(f"{VENDOR}: an API key and a page id are required")
        self._api_key = api_key
        self.page_id = page_id
        self.api_url = api_url.rstrip("/")
        self.components = dict(components or {})
        # What may be published; nothing listed, nothing published.
        self.public = public or StatusPagePolicy()
        self._transport = transport

    def __repr__(self) -> str:
        return f"Statuspage({self.api_url}, page={self.page_id})"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Statuspage | None:
        """None when neither key nor page is set; PermanentDeliveryError when only one is, or the map is malformed."""
        key = setting(env, "TOCSIN_STATUSPAGE_API_KEY")
        page = setting(env, "TOCSIN_STATUSPAGE_PAGE_ID")
        if not key and not page:
            return None
        if not key or not page:
            missing = "TOCSIN_STATUSPAGE_API_KEY" if not key else "TOCSIN_STATUSPAGE_PAGE_ID"
            raise PermanentDeliveryError(f"{VENDOR}: {missing} is not set (the other Statuspage setting is)")
        try:
            public = worker_status_page(env)
        except ValueError as err:
            raise PermanentDeliveryError(f"{VENDOR}: {err}") from None
        return cls(
            key,
            page,
            http_url(env.get("TOCSIN_STATUSPAGE_API_URL") or DEFAULT_API_URL, "TOCSIN_STATUSPAGE_API_URL"),
            components=parse_components(env.get("TOCSIN_STATUSPAGE_COMPONENTS") or ""),
            public=public,
        )

    def component_for(self, target: str) -> str | None:
        target = target.strip()
        if target.startswith("component:"):
            return target.removeprefix("component:").strip() or None
        return self.components.get(target)

    async def send(self, message: Message) -> Receipt:
        if not self.public.lists(message.service):
            return Receipt(provider_id=f"{VENDOR}:not-public")
        mark = delivery_mark(message.idempotency_key)
        component = self.component_for(message.target)
        async with self._client() as http:
            incident = await self._find(http, "incidents/unresolved", message.incident)
            duplicate = incident is not None and mark in _marks(incident)
            if incident is None and message.status == "resolved":
                # Nothing open: this very delivery resolved it already, someone else did, or none was ever opened.
                incident = await self._find(http, "incidents", message.incident)
                duplicate = incident is not None and mark in _marks(incident)
            elif incident is None:
                incident = await self._create(http, message, mark, component)
            elif not duplicate:
                incident = await self._update(http, incident, message, mark, component)
            # Setting a status is idempotent, so a retry whose incident write landed still gets here.
            if component:
                await self._set_component(http, component, component_status(message))
        if incident is None:
            return Receipt(provider_id=f"{VENDOR}:no-open-incident")
        return Receipt(provider_id=str(incident["id"]), duplicate=duplicate)

    async def check(self) -> str:
        """GET the page: proves the key and the page id without changing anything."""
        async with self._client() as http:
            page = await self._call(http, "GET", "")
        return f"{VENDOR}: page {page.get('name') or self.page_id} ({self.page_id})"

    # --- requests ---

    def _client(self) -> httpx.AsyncClient:
        return _http.client(
            self.api_url,
            transport=self._transport,
            headers={"Authorization": f"OAuth {self._api_key}", "Accept": "application/json"},
        )

    async def _call(self, http: httpx.AsyncClient, method: str, path: str, **kwargs: Any) -> Any:
        url = f"/pages/{self.page_id}" + (f"/{path}" if path else "")
        response = await _http.send(VENDOR, http.request(method, url, **kwargs))
        if response.status_code == 420:  # Statuspage's older rate-limit answer
            raise RetryableDeliveryError(f"{VENDOR} answered 420: rate limited", _http.retry_after(response))
        _http.raise_for_vendor(VENDOR, response, _detail(response))
        try:
            return response.json()
        except ValueError:
            raise RetryableDeliveryError(
                f"{VENDOR} answered {response.status_code} with a body that is not JSON"
            ) from None

    async def _find(self, http: httpx.AsyncClient, path: str, incident_key: str) -> dict[str, Any] | None:
        """The first incident on the first page of `path` (newest first) whose metadata names this Tocsin incident."""
        # The unresolved list pages with per_page, the full list with limit: 100 is the most either gives.
        params = {"per_page": 100} if path.endswith("unresolved") else {"limit": 100}
        listed = await self._call(http, "GET", path, params=params)
        for incident in listed if isinstance(listed, list) else []:
            # The raw key: an incident opened before keys were hashed, still open.
            known = (incident_ref(incident_key), incident_key)
            if isinstance(incident, dict) and _tocsin_metadata(incident).get("incident") in known:
                return incident
        return None

    async def _create(
        self, http: httpx.AsyncClient, message: Message, mark: str, component: str | None
    ) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "name": self.public.title(message.severity, message.service),
            "status": INCIDENT_STATUS.get(message.status, "investigating"),
            "body": public_update(message.status, message.service),
            "metadata": {METADATA_KEY: {"incident": incident_ref(message.incident), "deliveries": mark}},
        }
        if component:
            fields["component_ids"] = [component]
        created = await self._call(http, "POST", "incidents", json={"incident": fields})
        return _incident(created)

    async def _update(
        self, http: httpx.AsyncClient, incident: dict[str, Any], message: Message, mark: str, component: str | None
    ) -> dict[str, Any]:
        marks = [*_marks(incident), mark][-REMEMBERED_DELIVERIES:]
        fields: dict[str, Any] = {
            "name": self.public.title(message.severity, message.service),  # follows a change of severity
            "status": INCIDENT_STATUS.get(message.status, "investigating"),
            "body": public_update(message.status, message.service),
            "metadata": {METADATA_KEY: {"incident": incident_ref(message.incident), "deliveries": " ".join(marks)}},
        }
        known = [c.get("id") for c in incident.get("components") or [] if isinstance(c, dict)]
        if component and component not in known:
            fields["component_ids"] = [*(str(c) for c in known if c), component]
        updated = await self._call(http, "PATCH", f"incidents/{incident['id']}", json={"incident": fields})
        return _incident(updated)

    async def _set_component(self, http: httpx.AsyncClient, component: str, status: str) -> None:
        await self._call(http, "PATCH", f"components/{component}", json={"component": {"status": status}})


def parse_components(raw: str) -> dict[str, str]:
    """`checkout=abc123,billing=def456` -> {"checkout": "abc123", "billing": "def456"}."""
    pairs: dict[str, str] = {}
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        service, sep, component = (s.strip() for s in item.partition("="))
        if not sep or not service or not component:
            raise PermanentDeliveryError(f"TOCSIN_STATUSPAGE_COMPONENTS: {item!r} is not service=component_id")
        pairs[service] = component
    return pairs


def _tocsin_metadata(incident: Mapping[str, Any]) -> dict[str, Any]:
    metadata = incident.get("metadata")
    ours = metadata.get(METADATA_KEY) if isinstance(metadata, dict) else None
    return ours if isinstance(ours, dict) else {}


def _marks(incident: Mapping[str, Any]) -> list[str]:
    return str(_tocsin_metadata(incident).get("deliveries") or "").split()


def _incident(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict) or not body.get("id"):
        raise RetryableDeliveryError(f"{VENDOR} answered without an incident id")
    return body


def _detail(response: httpx.Response) -> str:
    """Statuspage's reason: `{"error": "..."}`, `{"error": ["...", ...]}` or `{"message": "..."}`."""
    if response.is_success:
        return ""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    error = body.get("error") or body.get("message") or ""
    if isinstance(error, list):
        error = "; ".join(str(e) for e in error)
    return str(error)[:300]
