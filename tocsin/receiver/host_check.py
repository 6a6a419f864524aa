"""An open receiver answers only requests addressed to a loopback name: the defence against DNS rebinding.

Without credentials the receiver listens on loopback only (tocsin/receiver/serve.py), and anything that reaches
the port may open incidents and page people. A web page in a browser on the same machine can reach it too: its
script resolves the attacker's own name (`evil.example`) first to the attacker's server, then to 127.0.0.1, and
the browser, seeing the same origin, lets the script post and read the answers. Such a request still carries
the attacker's name in its Host header; one addressed to `localhost`, `127.0.0.1` or `[::1]` (any port, any
loopback address) cannot come from a foreign page. So an open receiver refuses every other Host, before anything
else: routing, the gate, the metrics.

421 Misdirected Request rather than 403: the request is not forbidden to its sender, it is addressed to a name
this server does not serve, which is what 421 says (RFC 9110, 15.5.20); a client that used the wrong name learns
to fix the URL, not its credentials. With credentials configured there is no check: a rebinding page cannot
send the token or the signature, and the receiver then serves whatever name a proxy or DNS gives it.
"""

from __future__ import annotations

import logging
import re

from fastapi.responses import JSONResponse

from tocsin.addresses import is_loopback
from tocsin.receiver.gate import Problem
from tocsin.receiver.metrics import ASGIApp, Receive, Scope, Send

log = logging.getLogger("tocsin.receiver")

# `name[:port]` or `[ipv6][:port]`; anything else (a second colon, a path, spaces) is not a Host we serve.
_HOST = re.compile(r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<name>[^\[\]:/\s]+))(?::[0-9]{1,5})?")
MISDIRECTED = Problem(
    reason="misdirected_host",
    message="this receiver has no credentials configured, so it answers only requests addressed to localhost, "
    "127.0.0.1 or [::1] (a page in a browser must not reach it under another name); use one of those in the URL, "
    "or configure TOCSIN_INGEST_TOKEN or TOCSIN_INGEST_HMAC_SECRET to receive from elsewhere",
)


def loopback_host(header: str | None) -> bool:
    """Whether a Host header names this machine's loopback: `localhost`, `127.0.0.1`, `[::1]`, with any port."""
    match = _HOST.fullmatch(header or "")
    return match is not None and is_loopback((match["v6"] or match["name"]).lower())


class LoopbackHostOnly:
    """Answers 421 with a Problem to any HTTP request whose Host is not loopback (or that has none, or two)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        hosts = [value.decode("latin-1") for name, value in scope["headers"] if name == b"host"]
        if len(hosts) == 1 and loopback_host(hosts[0]):
            await self.app(scope, receive, send)
            return
        client = scope.get("client") or ("?", 0)
        # %r: the header is the sender's text, and must not forge log lines.
        log.info("refused a request from %s for Host %r: not a loopback name", client[0], [h[:100] for h in hosts])
        response = JSONResponse(MISDIRECTED.model_dump(exclude_none=True), status_code=421)
        await response(scope, receive, send)
