"""Logs evidence: the policy's LogQL query (`postmortem.logs.query`, a label template) against Loki over the
incident window, oldest lines first, at most `postmortem.logs.limit` of them.

`GET {TOCSIN_LOKI_URL}/loki/api/v1/query_range?query=..&start=<ns>&end=<ns>&limit=..&direction=forward`, with
`Authorization: Bearer <TOCSIN_LOKI_TOKEN>` when a token is set (or `TOCSIN_LOKI_TOKEN_FILE`), credentials in
the URL sent as basic auth (Grafana Cloud's user and token), and `X-Scope-OrgID: <TOCSIN_LOKI_TENANT>` for a
multi-tenant Loki. Loki answers `{"status":"success","data":{"resultType":"streams","result":[{"stream":{..},
"values":[["<ns>","line"],..]}]}}`.

Log lines are untrusted text: anyone who can make the service log can write them, instructions to a reader
included. They are kept as data and nothing else: identical lines are counted once, each is cut to 200
characters on one line, and the most frequent distinct lines become evidence, quoted with their count; every
line received is in the artifact (`<key>/logs.json`). Nothing here parses, follows or acts on their content.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx

from tocsin.addresses import redact
from tocsin.policy.templating import TemplateError, render_template
from tocsin.postmortem.artifacts import ArtifactStore
from tocsin.postmortem.contracts import GatherRequest, SourceResult
from tocsin.postmortem.sources.results import (
    DEFAULT_TIMEOUT,
    Finding,
    SourceFailure,
    artifact_path,
    clip,
    clock,
    failed,
    number,
    read_setting,
    read_url,
    skipped,
    template_labels,
)

URL_VARIABLE = "TOCSIN_LOKI_URL"
TOKEN_VARIABLE = "TOCSIN_LOKI_TOKEN"  # noqa: S105 - the variable's name, not a token
TENANT_VARIABLE = "TOCSIN_LOKI_TENANT"
QUERY_PATH = "/loki/api/v1/query_range"
LINE_LIMIT = 200  # characters of a line kept in its evidence
SAMPLE_LIMIT = 50  # distinct lines kept as evidence, the most frequent first
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def nanoseconds(at: datetime) -> int:
    """Loki's time: integer nanoseconds since the epoch, exact (no float rounding)."""
    return ((at - _EPOCH) // timedelta(microseconds=1)) * 1000


class LogLine:
    """One distinct line: how often it came, when first and last, and the stream it first came in."""

    def __init__(self, text: str, at: datetime, stream: dict[str, str]) -> None:
        self.text, self.first, self.last, self.stream, self.count = text, at, at, stream, 1


def distinct_lines(streams: list[tuple[dict[str, str], list[tuple[datetime, str]]]]) -> list[LogLine]:
    """Identical lines (across streams) counted once, in the order they were first seen."""
    seen: dict[str, LogLine] = {}
    for labels, entries in streams:
        for at, text in entries:
            line = seen.get(text)
            if line is None:
                seen[text] = LogLine(text, at, labels)
                continue
            line.count += 1
            line.first, line.last = min(line.first, at), max(line.last, at)
    return sorted(seen.values(), key=lambda line: line.first)


def sample(lines: list[LogLine], link: str, limit: int = SAMPLE_LIMIT) -> list[Finding]:
    """The `limit` most frequent distinct lines (earliest first among equals), each quoted as data."""
    kept = sorted(lines, key=lambda line: (-line.count, line.first))[:limit]
    return [
        Finding(line.first, f"log line x{line.count} (first {clock(line.first)}): {clip(line.text, LINE_LIMIT)}", link)
        for line in kept
    ]


def _streams(answer: Any, where: str) -> list[tuple[dict[str, str], list[tuple[datetime, str]]]]:
    if not isinstance(answer, dict) or not isinstance(answer.get("data"), dict):
        raise SourceFailure(f"{where}: not a Loki query_range answer")
    if answer.get("status") != "success":
        raise SourceFailure(f"{where}: status {clip(str(answer.get('status')), 40)!r}")
    data = answer["data"]
    if data.get("resultType") != "streams":
        kind = clip(str(data.get("resultType")), 40)
        raise SourceFailure(f"{where}: resultType {kind!r}, not streams (postmortem.logs.query must select lines)")
    if not isinstance(data.get("result"), list):
        raise SourceFailure(f"{where}: not a Loki query_range answer (no result list)")
    found = []
    for item in data["result"]:
        if not (isinstance(item, dict) and isinstance(item.get("values"), list)):
            raise SourceFailure(f"{where}: a stream without values")
        labels = {str(k): str(v) for k, v in (item.get("stream") or {}).items()}
        entries = []
        for value in item["values"]:
            # ["<ns>", "line"], or ["<ns>", "line", {structured metadata}] on Loki 3.
            if not (isinstance(value, list) and len(value) >= 2 and isinstance(value[1], str)):
                raise SourceFailure(f'{where}: a log entry is not ["<ns>", "line"]')
            try:
                at = _EPOCH + timedelta(microseconds=int(value[0]) // 1000)
            except (TypeError, ValueError):
                raise SourceFailure(f"{where}: a log entry's time is not nanoseconds") from None
            entries.append((at, value[1]))
        found.append((labels, entries))
    return found


async def _query(url: str, params: dict[str, str | int], headers: dict[str, str], wait: float, token: str) -> Any:
    base = redact(url).rstrip("/")
    where = f"Loki at {base}"
    # Credentials in the URL go as basic auth on a URL without them, so no log line (httpx logs each URL) has them.
    parts = urlsplit(url)
    auth = httpx.BasicAuth(unquote(parts.username), unquote(parts.password or "")) if parts.username else None
    started = time.monotonic()
    transport = httpx.AsyncHTTPTransport(retries=0)
    async with httpx.AsyncClient(timeout=httpx.Timeout(wait), transport=transport, auth=auth) as http:
        try:
            response = await http.get(base + QUERY_PATH, params=params, headers=headers)
        except httpx.TimeoutException:
            raise SourceFailure(f"{where}: no answer within {time.monotonic() - started:.1f}s (timeout)") from None
        except httpx.ConnectError:
            raise SourceFailure(f"{where} unreachable (connection refused or failed)") from None
        except httpx.TransportError as err:
            raise SourceFailure(f"{where}: {type(err).__name__}") from None
    if not response.is_success:
        body = clip(response.text, 200).replace(token, "[redacted]") if token else clip(response.text, 200)
        raise SourceFailure(f"{where} answered {response.status_code}" + (f": {body}" if body else ""))
    try:
        return response.json()
    except ValueError:
        raise SourceFailure(f"{where}: the answer is not JSON (is the URL a Loki server?)") from None


async def gather_logs(
    request: GatherRequest,
    store: ArtifactStore,
    env: Mapping[str, str] | None = None,
    *,
    request_timeout: float = DEFAULT_TIMEOUT,
) -> SourceResult:
    """The window's matching log lines: every one in `<key>/logs.json`, a sample of distinct ones as evidence."""
    env = os.environ if env is None else env
    if not (env.get(URL_VARIABLE) or "").strip():
        return skipped("logs", f"{URL_VARIABLE} is not set: no logs gathered")
    try:
        url = read_url(env, URL_VARIABLE)
        token = read_setting(env, TOKEN_VARIABLE) or ""
        query = render_template(request.settings.logs.query, template_labels(request))
    except SourceFailure as failure:
        return failed("logs", failure.reason)
    except TemplateError as err:
        return failed("logs", f"postmortem.logs.query: {err}")
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    tenant = (env.get(TENANT_VARIABLE) or "").strip()
    if tenant:
        headers["X-Scope-OrgID"] = tenant
    start, end = request.window
    limit = request.settings.logs.limit
    params: dict[str, str | int] = {
        "query": query,
        "start": nanoseconds(start),
        "end": nanoseconds(end),
        "limit": limit,
        "direction": "forward",
    }
    try:
        streams = _streams(await _query(url, params, headers, request_timeout, token), f"Loki at {redact(url)}")
    except SourceFailure as failure:
        return failed("logs", failure.reason)
    lines = distinct_lines(streams)
    total = sum(len(entries) for _, entries in streams)
    raw = {
        "query": query,
        "window": {"start": start.isoformat(), "end": end.isoformat()},
        "limit": limit,
        "lines_received": total,
        "streams": [
            {"stream": labels, "values": [[str(nanoseconds(at)), text] for at, text in entries]}
            for labels, entries in streams
        ],
    }
    ref = await asyncio.to_thread(store.write_json, artifact_path(request.key, "logs"), raw)
    notes = []
    if total >= limit:
        notes.append(f"Loki's answer reached the limit of {limit} lines: the sample covers the window's start only")
    if len(lines) > SAMPLE_LIMIT:
        notes.append(f"{len(lines)} distinct lines, the {SAMPLE_LIMIT} most frequent kept as evidence")
    return SourceResult(
        source="logs",
        status="ok",
        reason="; ".join(notes),
        evidence=number("logs", sample(lines, query)),
        artifact=ref,
    )
