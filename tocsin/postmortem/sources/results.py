"""What every evidence source shares: findings numbered into Evidence, SourceResults for the three outcomes,
settings read from the worker's environment, and where a source's raw data goes in the artifact store.

A source never raises for a problem with the system it asks: it returns `failed(...)` with a reason fit for
the report (never a token, a password or a URL's credentials), or `skipped(...)` naming the variable that
would turn it on. Evidence ids are '<source>-<n>', numbered from 1 in time order.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from tocsin.channels.base import DeliveryError
from tocsin.channels.vendor_settings import http_url, setting
from tocsin.postmortem.contracts import EVIDENCE_LIMIT, SUMMARY_LIMIT, Evidence, GatherRequest, SourceName, SourceResult

# A request to a source's API waits at most this long (seconds) for an answer.
DEFAULT_TIMEOUT = 15.0


class SourceFailure(Exception):
    """Raised inside a source, caught at its edge and returned as a `failed` result. The message is the reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Finding:
    """One fact before it is numbered: when, what (one line) and where it comes from."""

    at: datetime | None
    summary: str
    link: str = ""


def one_line(text: str) -> str:
    """Control characters (newlines, escapes, ANSI colour codes' ESC) become spaces; nothing else changes."""
    return "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in text)


def clip(text: str, limit: int) -> str:
    """`text` on one line, cut to at most `limit` characters (the last one an ellipsis when cut)."""
    text = one_line(text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def clock(at: datetime) -> str:
    """'14:02Z': the time of day in UTC, as incident timelines are read."""
    return utc(at).strftime("%H:%MZ")


def utc(at: datetime) -> datetime:
    """An aware datetime in UTC (a naive one is taken to be UTC already, as every API here sends)."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def number(source: SourceName, findings: Iterable[Finding], limit: int = EVIDENCE_LIMIT) -> list[Evidence]:
    """Evidence '<source>-1'... in time order (undated last, in their given order), at most `limit` items."""
    undated = datetime.min.replace(tzinfo=UTC)
    ordered = sorted(
        enumerate(findings),
        key=lambda pair: (pair[1].at is None, utc(pair[1].at) if pair[1].at else undated, pair[0]),
    )
    return [
        Evidence(
            id=f"{source}-{n}",
            source=source,
            at=utc(finding.at) if finding.at else None,
            summary=clip(finding.summary, SUMMARY_LIMIT),
            link=clip(finding.link, 1000),
        )
        for n, (_, finding) in enumerate(ordered[:limit], start=1)
    ]


def skipped(source: SourceName, reason: str) -> SourceResult:
    return SourceResult(source=source, status="skipped", reason=reason)


def failed(source: SourceName, reason: str) -> SourceResult:
    return SourceResult(source=source, status="failed", reason=clip(reason, 1000))


def read_setting(env: Mapping[str, str], name: str) -> str | None:
    """`NAME` or the contents of the file `NAME_FILE` names; None when neither is set. A file that cannot be
    read (or both set) is a SourceFailure naming the variable, never the value."""
    try:
        return setting(env, name)
    except DeliveryError as err:
        raise SourceFailure(str(err)) from None


def read_url(env: Mapping[str, str], name: str, default: str = "") -> str:
    """An absolute http(s) URL from `name` (or `default`), without a trailing slash; "" when neither is set.
    A malformed one is a SourceFailure naming the variable, not the value (it may hold credentials)."""
    value = (env.get(name) or "").strip() or default
    if not value:
        return ""
    try:
        return http_url(value, name).rstrip("/")
    except DeliveryError as err:
        raise SourceFailure(str(err)) from None


def artifact_path(key: str, source: SourceName) -> str:
    """Where a source's raw data is kept in the artifact store: `<key>/<source>.json`."""
    return f"{key}/{source}.json"


def template_labels(request: GatherRequest) -> dict[str, str]:
    """The labels a policy's query templates see: the incident's labels, with `service` always there."""
    return {"service": request.service, **request.labels}
