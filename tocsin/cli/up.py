"""`tocsin up`: the whole product in the foreground. `tocsin worker`: the worker alone."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from tocsin import search_attributes as sa
from tocsin.client import connect_when_ready
from tocsin.devserver import DevServer
from tocsin.policy.loader import load_policy
from tocsin.settings import Settings
from worker.main import build_workers, run_workers, serve

log = logging.getLogger("tocsin.up")


def _stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def up(settings: Settings) -> None:
    policy = load_policy(settings.policy)  # fail before starting anything if the policy is bad
    stop = _stop_event()
    settings.home.mkdir(parents=True, exist_ok=True)
    server = DevServer(settings) if settings.embedded else None
    if server:
        _say(f"tocsin: starting the Temporal dev server (state in {settings.temporal_db})")
        await server.start()
    try:
        client = await connect_when_ready(settings)
        if not server:
            added = await sa.register(client, settings.namespace)
            if added:
                _say(f"tocsin: registered search attributes {', '.join(added)}")
        where = f"http://127.0.0.1:{settings.ui_port}" if server else "your Temporal UI"
        _say(
            f"tocsin: up. Temporal {settings.target} (namespace {settings.namespace}); Web UI {where}\n"
            f"tocsin: policy {settings.policy} ({len(policy.incident_classification.severity_levels)} severities); "
            f"outbox {settings.outbox_path}\n"
            "tocsin: the alert receiver is not part of this release; open incidents with `tocsin trigger`.\n"
            "tocsin: Ctrl-C stops everything."
        )
        await run_workers(build_workers(client, settings), stop)
        _say("tocsin: worker stopped")
    finally:
        if server:
            await server.stop()
            _say("tocsin: Temporal dev server stopped")


async def worker_only(settings: Settings) -> None:
    await serve(settings)
