"""PagerDuty evidence: what PagerDuty's log says happened to the incident's page (acknowledged, escalated,
notified, resolved), from the REST API.

`GET {TOCSIN_PAGERDUTY_API_URL}/log_entries?since=..&until=..&is_overview=true&include[]=incidents&time_zone=UTC`
(default https://api.pagerduty.com) with `Authorization: Token token=<TOCSIN_PAGERDUTY_API_TOKEN>` (or the
file `TOCSIN_PAGERDUTY_API_TOKEN_FILE` names; a read-only key is enough) and
`Accept: application/vnd.pagerduty+json;version=2`, paged by `offset` while `more` is true, over the incident
window. The REST API key is not the Events API routing key the `pagerduty` channel pages with.

Which entries are this incident's: Tocsin's `pagerduty` channel sends the incident key as the Events API
`dedup_key`, and PagerDuty keeps an event's dedup key as its incident's `incident_key`. So an entry matches
when the incident it is about (expanded by `include[]=incidents`) has `incident_key` equal to the key, or
when the entry's own `channel.incident_key` (on entries made by an Events API event) is the key; every other
entry about a PagerDuty incident found that way matches too. Entries of other incidents are left out.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import httpx

from tocsin.channels.pagerduty import DEDUP_KEY_LIMIT
from tocsin.channels.vendor_settings import host_of
from tocsin.postmortem.artifacts import ArtifactStore
from tocsin.postmortem.contracts import GatherRequest, SourceResult
from tocsin.postmortem.sources.results import (
    DEFAULT_TIMEOUT,
    Finding,
    SourceFailure,
    artifact_path,
    clip,
    failed,
    number,
    read_setting,
    read_url,
    skipped,
)

TOKEN_VARIABLE = "TOCSIN_PAGERDUTY_API_TOKEN"  # noqa: S105 - the variable's name, not a token
URL_VARIABLE = "TOCSIN_PAGERDUTY_API_URL"
DEFAULT_API_URL = "https://api.pagerduty.com"
PAGE_SIZE = 100  # PagerDuty's largest page
MAX_PAGES = 10
_MEANING = {401: "bad API token", 403: "the token may not read log entries", 429: "rate limited"}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def belongs(entries: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """The entries about this incident (see the module's docstring for what is matched)."""
    dedup = key[:DEDUP_KEY_LIMIT]
    ids: set[str] = set()
    for entry in entries:
        incident, channel = _dict(entry.get("incident")), _dict(entry.get("channel"))
        if dedup in (_text(incident.get("incident_key")), _text(channel.get("incident_key"))) and incident.get("id"):
            ids.add(str(incident["id"]))
    return [e for e in entries if _dict(e.get("incident")).get("id") is not None and str(e["incident"]["id"]) in ids]


def describe(entry: dict[str, Any]) -> str:
    """One line for an entry: acknowledged by X, notified Y by sms, escalated (PagerDuty's words), ..."""
    kind = _text(entry.get("type")).removesuffix("_reference").removesuffix("_log_entry") or "entry"
    agent = _text(_dict(entry.get("agent")).get("summary"))
    user = _text(_dict(entry.get("user")).get("summary"))
    via = _text(_dict(entry.get("channel")).get("type"))
    said = _text(entry.get("summary"))
    if kind in ("acknowledge", "unacknowledge", "resolve") and agent:
        text = f"{kind}d by {agent}"
    elif kind == "notify" and user:
        text = f"notified {user}" + (f" by {via}" if via else "")
    elif kind == "trigger":
        text = "triggered" + (f" via {via}" if via else "")
    elif kind in ("escalate", "assign", "delegate"):
        text = f"{kind}d" + (f" ({said})" if said else "")
    else:
        text = f"{kind}: {said}" if said else kind
    incident_number = _dict(entry.get("incident")).get("incident_number")
    return f"PagerDuty incident #{incident_number} {text}" if incident_number else f"PagerDuty {text}"


def _time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


async def _entries(
    url: str, token: str, since: datetime, until: datetime, wait: float
) -> tuple[list[dict[str, Any]], bool]:
    """Every entry of the window, paged by offset while PagerDuty says there are `more`; and whether all were read."""
    where = f"PagerDuty at {host_of(url)}"
    headers = {"Authorization": f"Token token={token}", "Accept": "application/vnd.pagerduty+json;version=2"}
    found: list[dict[str, Any]] = []
    transport = httpx.AsyncHTTPTransport(retries=0)
    async with httpx.AsyncClient(timeout=httpx.Timeout(wait), transport=transport, headers=headers) as http:
        for _ in range(MAX_PAGES):
            params: dict[str, str | int] = {
                "since": since.isoformat(),
                "until": until.isoformat(),
                "is_overview": "true",
                "include[]": "incidents",
                "time_zone": "UTC",
                "limit": PAGE_SIZE,
                "offset": len(found),
            }
            started = time.monotonic()
            try:
                response = await http.get(f"{url}/log_entries", params=params)
            except httpx.TimeoutException:
                raise SourceFailure(f"{where}: no answer within {time.monotonic() - started:.1f}s (timeout)") from None
            except httpx.ConnectError:
                raise SourceFailure(f"{where} unreachable (connection refused or failed)") from None
            except httpx.TransportError as err:
                raise SourceFailure(f"{where}: {type(err).__name__}") from None
            if not response.is_success:
                raise SourceFailure(_failure(where, response, token))
            try:
                answer = response.json()
                entries = answer["log_entries"]
                if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
                    raise TypeError
            except (ValueError, KeyError, TypeError):
                raise SourceFailure(f"{where}: not a log_entries answer") from None
            found.extend(entries)
            if not (answer.get("more") and entries):
                return found, True
    return found, False


def _failure(where: str, response: httpx.Response, token: str) -> str:
    meaning = _MEANING.get(response.status_code)
    if meaning:
        return f"{where} answered {response.status_code} ({meaning})"
    try:
        error = response.json()["error"]
        errors = "; ".join(map(str, error.get("errors") or []))
        detail = str(error.get("message") or "") + (f" ({errors})" if errors else "")
    except (ValueError, KeyError, TypeError, AttributeError):
        detail = response.text
    detail = clip(detail, 200).replace(token, "[redacted]")
    return f"{where} answered {response.status_code}" + (f": {detail}" if detail else "")


async def gather_pagerduty(
    request: GatherRequest,
    store: ArtifactStore,
    env: Mapping[str, str] | None = None,
    *,
    request_timeout: float = DEFAULT_TIMEOUT,
) -> SourceResult:
    """The incident's PagerDuty log entries in the window: one evidence each, all of them in the artifact."""
    env = os.environ if env is None else env
    try:
        token = read_setting(env, TOKEN_VARIABLE)
        url = read_url(env, URL_VARIABLE, DEFAULT_API_URL)
    except SourceFailure as failure:
        return failed("pagerduty", failure.reason)
    if not token:
        return skipped("pagerduty", f"{TOKEN_VARIABLE} is not set (nor {TOKEN_VARIABLE}_FILE): no PagerDuty log read")
    since, until = request.window
    try:
        entries, complete = await _entries(url, token, since, until, request_timeout)
    except SourceFailure as failure:
        return failed("pagerduty", failure.reason)
    mine = belongs(entries, request.key)
    findings = [Finding(_time(e.get("created_at")), describe(e), _text(e.get("html_url"))) for e in mine]
    raw = {"key": request.key, "entries_in_window": len(entries), "log_entries": mine}
    ref = await asyncio.to_thread(store.write_json, artifact_path(request.key, "pagerduty"), raw)
    reason = "" if mine else f"none of the {len(entries)} log entries in the window is about incident key {request.key}"
    if not complete:
        reason = "; ".join(filter(None, [reason, f"read the window's first {len(entries)} log entries only"]))
    return SourceResult(
        source="pagerduty", status="ok", reason=reason, evidence=number("pagerduty", findings), artifact=ref
    )
