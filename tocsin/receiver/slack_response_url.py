"""Answering a Slack button click where Slack reads the answer: a POST of the message to the click's
`response_url` (Slack ignores the body of the HTTP answer to a `block_actions` callback).

Only two kinds of address are ever called: `https://hooks.slack.com/...`, where Slack's response URLs live, and
the origin (scheme, host, port) of `TOCSIN_SLACK_API_URL` when it is set, the same variable that points the
Slack channel at another Slack (a local fake in tests). Anything else is refused before the click is acted
on: the payload is signed by Slack, but the receiver must never be made to call a host a callback names.
The URL is parsed once, with httpx, and that parsed URL is what is checked and what is called, so no two
parsers can disagree on its host; redirects are not followed.

A response URL is a credential (whoever holds it can post into the channel for 30 minutes): logs name its
origin only, never its path.

Delivery is best effort, after the HTTP answer: a short timeout and one more attempt when Slack's side failed
(a connection error, 429 or 5xx); an expired or used-up URL (4xx) is not tried again. A failure is logged,
never raised: the incident has already acted, and its war room summary shows the new status either way.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx

log = logging.getLogger("tocsin.receiver.slack")

SLACK_HOOKS = "https://hooks.slack.com"
TIMEOUT = httpx.Timeout(5.0, connect=3.0)
ATTEMPTS = 2
PAUSE_SECONDS = 0.5
_DEFAULT_PORTS = {"http": 80, "https": 443}

Origin = tuple[str, str, int]


def _origin(url: httpx.URL) -> Origin:
    # httpx leaves the port out when it is the scheme's default: put it back, so :443 and no port compare equal.
    return url.scheme, url.host, url.port or _DEFAULT_PORTS.get(url.scheme, 0)


def _shown(origin: Origin) -> str:
    scheme, host, port = origin
    return f"{scheme}://{host}" if _DEFAULT_PORTS.get(scheme) == port else f"{scheme}://{host}:{port}"


class ResponseUrls:
    """Which response URLs this receiver calls (`api_url`: TOCSIN_SLACK_API_URL, when set), and the call."""

    def __init__(self, api_url: str | None = None) -> None:
        origins = {_origin(httpx.URL(SLACK_HOOKS))}
        if api_url:
            origins.add(_origin(httpx.URL(api_url)))
        self._origins = frozenset(origins)

    def allowed(self, url: str | None) -> httpx.URL | None:
        """`url` parsed, if it is one this receiver calls; None (logged, by origin only) if not."""
        if not url:
            return None
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, ValueError):
            log.warning("slack: refused a click whose response_url is not a URL")
            return None
        # A user or password in the URL is never Slack's, and would be one more place for a host to hide.
        if parsed.userinfo or _origin(parsed) not in self._origins:
            log.warning("slack: refused a click whose response_url is on %s, not Slack's", _shown(_origin(parsed)))
            return None
        return parsed

    async def post(self, url: httpx.URL, message: dict[str, Any]) -> None:
        """POST `message` to `url` (from `allowed`), at most twice; never raises."""
        where = _shown(_origin(url))
        failure = "no attempt"
        try:
            transport = httpx.AsyncHTTPTransport(retries=0)
            async with httpx.AsyncClient(timeout=TIMEOUT, transport=transport, follow_redirects=False) as client:
                for attempt in range(1, ATTEMPTS + 1):
                    if attempt > 1:
                        await asyncio.sleep(PAUSE_SECONDS)
                    try:
                        response = await client.post(url, json=message)
                    except httpx.TransportError as err:
                        failure = type(err).__name__
                        continue
                    if response.is_success:
                        return
                    failure = f"HTTP {response.status_code}"
                    if response.status_code != 429 and response.status_code < 500:
                        break  # expired, used five times, or a message Slack refuses: the same again fails again
        except Exception as err:  # a background task's error would reach no one: say it here, and stop
            failure = type(err).__name__
        log.warning("slack: the answer to a click was not delivered to %s (%s)", where, failure)
