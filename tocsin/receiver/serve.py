"""Serving the receiver: inside `tocsin up` next to the worker, or alone (`tocsin receiver`).

The socket is bound before anything else starts, so a busy port or a refused address is one clear error, not a
half-started product. uvicorn's own signal handling is off: the caller's stop event (SIGINT/SIGTERM) stops the
receiver together with everything else.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import logging
import os
import socket
import ssl
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import uvicorn
from fastapi import FastAPI
from temporalio.client import Client

from tocsin.addresses import is_loopback
from tocsin.intake.ingest import coalescing_sender, ingest_alerts
from tocsin.policy.schema import Policy
from tocsin.receiver.app import ENDPOINTS, HealthCheck, create_app
from tocsin.receiver.config import ReceiverConfig, ReceiverError
from tocsin.receiver.gate import Ingest
from tocsin.receiver.heartbeat_routes import HeartbeatReceiver, temporal_ping
from tocsin.receiver.public_status import IncidentSummary, StatusPage, fetch_incidents
from tocsin.receiver.public_status_setup import load_status_config
from tocsin.receiver.responder_settings import Responders, load_responder_secrets
from tocsin.receiver.tls import server_context
from tocsin.responders.dispatch import temporal_act
from tocsin.settings import Settings, load_settings

log = logging.getLogger("tocsin.receiver")

HEALTH_TIMEOUT = timedelta(seconds=3)


@dataclass
class Listener:
    sock: socket.socket
    url: str
    tls: ssl.SSLContext | None = None  # HTTPS (TOCSIN_HTTP_TLS_CERT and _KEY), checked before the socket is bound


def bind(settings: Settings, config: ReceiverConfig) -> Listener:
    """Bind `TOCSIN_HTTP_HOST:TOCSIN_HTTP_PORT`. Without credentials only a loopback address is allowed: an
    open receiver reachable from the network would let anyone open incidents and page people."""
    host = settings.http_host
    if config.open and not is_loopback(host):
        raise ReceiverError(
            f"TOCSIN_HTTP_HOST={host} needs credentials: set TOCSIN_INGEST_TOKEN or TOCSIN_INGEST_HMAC_SECRET "
            "(and TOCSIN_PAGERDUTY_ROUTING_KEYS for /v2/enqueue), or listen on 127.0.0.1"
        )
    tls = server_context(config)  # one set without the other, unreadable, or a key not the certificate's: stop here
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, settings.http_port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as err:
        raise ReceiverError(f"cannot listen on {host}:{settings.http_port}: {err.strerror or err}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as err:
        sock.close()
        hint = " (is another receiver running? set TOCSIN_HTTP_PORT)" if err.errno == errno.EADDRINUSE else ""
        raise ReceiverError(f"cannot listen on {host}:{settings.http_port}: {err.strerror or err}{hint}") from None
    port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    return Listener(sock=sock, url=f"{'https' if tls else 'http'}://{shown}:{port}", tls=tls)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # The caller owns SIGINT/SIGTERM (loop.add_signal_handler): uvicorn must neither replace its handlers
        # nor re-raise the signal after shutting down.
        yield


def build_server(app: FastAPI) -> uvicorn.Server:
    # uvicorn reports start and stop on its "uvicorn.error" logger at INFO; our own lines say the same.
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    config = uvicorn.Config(
        app,
        log_config=None,  # our logging setup, not uvicorn's
        access_log=False,
        lifespan="off",
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=10,
        ws="none",
    )
    return _Server(config)


async def serve_until(server: uvicorn.Server, listener: Listener, stop: asyncio.Event) -> None:
    """Serve until `stop` is set, then finish the requests in flight (a payload half-ingested is retried by its
    sender anyway: the 202 is only sent once Temporal has accepted it)."""

    async def watch() -> None:
        await stop.wait()
        server.should_exit = True

    if listener.tls is not None:
        # uvicorn builds its SSLContext from file names in Config.load(); ours, checked by bind(), replaces it.
        if not server.config.loaded:
            server.config.load()
        server.config.ssl = listener.tls
    watcher = asyncio.create_task(watch())
    try:
        await server.serve(sockets=[listener.sock])
    finally:
        watcher.cancel()
        listener.sock.close()


def temporal_ingest(client: Client, policy: Policy) -> Ingest:
    return functools.partial(ingest_alerts, client, policy, coalescer=coalescing_sender(client))


def temporal_healthcheck(client: Client) -> HealthCheck:
    async def check() -> bool:
        return await client.service_client.check_health(timeout=HEALTH_TIMEOUT)

    return check


def temporal_status_page(client: Client, policy: Policy, env: Mapping[str, str] | None = None) -> StatusPage | None:
    """The public page against Temporal, its template overridable from `$TOCSIN_HOME/templates/`; None when the
    policy or `TOCSIN_STATUS_PAGE=off` switched it off (then /status and /status.json answer 404)."""
    env = os.environ if env is None else env
    config = load_status_config(env, policy)
    if not config.public.enabled:
        log.info("status page: switched off (status_page.enabled or TOCSIN_STATUS_PAGE): /status answers 404")
        return None
    if not config.public.components:
        log.warning("status page: no components listed (status_page.components or TOCSIN_STATUS_COMPONENTS)")
    known: dict[str, IncidentSummary] = {}

    async def fetch(since: datetime) -> list[IncidentSummary]:
        return await fetch_incidents(client, since, known)

    return StatusPage(fetch, config, home=load_settings(env).home)


def temporal_app(
    client: Client, policy: Policy, config: ReceiverConfig, env: Mapping[str, str] | None = None
) -> FastAPI:
    env = os.environ if env is None else env
    # Who a vendor's user is comes from this receiver's own policy: its roster, never a callback's words.
    responders = Responders(act=temporal_act(client), roster=policy.roster, secrets=load_responder_secrets(env))
    return create_app(
        ingest=temporal_ingest(client, policy),
        healthcheck=temporal_healthcheck(client),
        config=config,
        status_page=temporal_status_page(client, policy, env),
        responders=responders,
        heartbeats=HeartbeatReceiver(declared=policy.heartbeats, ping=temporal_ping(client)),
    )


def announce(listener: Listener, config: ReceiverConfig) -> str:
    """The start-up lines: where it listens, what each endpoint accepts, never a secret."""
    endpoints = ", ".join(f"POST {path}" for path in ENDPOINTS.values())
    return (
        f"tocsin: receiver {listener.url} ({endpoints}; GET /healthz, /metrics, /openapi.json; "
        "public GET /status unless switched off)\n"
        f"tocsin: receiver auth: {config.describe()}"
    )
