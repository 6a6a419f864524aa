"""`tocsin up`: the whole product in the foreground. `tocsin worker`, `tocsin receiver`: one part alone.

The worker (every workflow and activity), the detector and the receiver (FastAPI, uvicorn) are imported only
by the command that runs them: every other command starts about half a second sooner without them.
"""

from __future__ import annotations

import asyncio
import signal
import sys

import typer

from tocsin import search_attributes as sa
from tocsin.client import connect_when_ready
from tocsin.devserver import DevServer
from tocsin.policy.overrides import load_paging_policy
from tocsin.prometheus import prometheus_url_from_env
from tocsin.receiver.config import load_receiver_config
from tocsin.settings import Settings, load_settings
from tocsin.state_dir import hold_home, prepare_home

app = typer.Typer()

SERVING = ("up", "worker", "receiver")
"""The commands that run until stopped: they log at INFO, the others only warnings."""


@app.command(
    "up",
    help="start Temporal (unless TEMPORAL_ADDRESS is set), the worker and the alert receiver, in the foreground",
)
def up_command() -> None:
    asyncio.run(up(load_settings()))


@app.command("worker", help="run the worker alone against TEMPORAL_ADDRESS or the local server")
def worker_command() -> None:
    asyncio.run(worker_only(load_settings()))


@app.command(
    "receiver", help="run the alert receiver alone (TOCSIN_HTTP_HOST:TOCSIN_HTTP_PORT) against TEMPORAL_ADDRESS"
)
def receiver_command() -> None:
    asyncio.run(receiver_only(load_settings()))


def _stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def up(settings: Settings) -> None:
    # First of all, before a port is bound or the dev server started: a second `tocsin up` on this home
    # stops here with the holder's pid, instead of a second server fighting over the SQLite file.
    with hold_home(settings.home):
        prepare_home(settings.home)  # owner-only umask (the dev server inherits it), older files tightened
        await _up(settings)


async def _up(settings: Settings) -> None:
    from tocsin.detection.schedule import ensure_detector_schedule
    from tocsin.receiver.serve import announce, bind, build_server, serve_until, temporal_app
    from worker.main import build_workers, run_workers

    policy, warnings = load_paging_policy(settings.policy, settings.home)  # a bad policy stops us here
    for warning in warnings:
        _say(f"tocsin: {warning}")
    prometheus_url = prometheus_url_from_env()  # likewise a malformed TOCSIN_PROMETHEUS_URL
    receiver_config = load_receiver_config()
    listener = bind(settings, receiver_config)  # likewise a busy port, or a public address without credentials
    try:
        stop = _stop_event()
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
            detector = await ensure_detector_schedule(client, policy, prometheus_url)
            receiver = build_server(temporal_app(client, policy, receiver_config))
            receiving = asyncio.create_task(serve_until(receiver, listener, stop))
            receiving.add_done_callback(lambda _: stop.set())  # a receiver that dies stops the rest too
            where = f"http://127.0.0.1:{settings.ui_port}" if server else "your Temporal UI"
            _say(
                f"tocsin: up. Temporal {settings.target} (namespace {settings.namespace}); Web UI {where}\n"
                f"tocsin: policy {settings.policy} ({len(policy.incident_classification.severity_levels)} "
                f"severities); outbox {settings.outbox_path}\n"
                f"{announce(listener, receiver_config)}\n"
                f"tocsin: {detector}\n"
                "tocsin: Ctrl-C stops everything."
            )
            try:
                await run_workers(build_workers(client, settings), stop)
                _say("tocsin: worker stopped")
            finally:
                stop.set()
                await receiving
                _say("tocsin: receiver stopped")
        finally:
            if server:
                await server.stop()
                _say("tocsin: Temporal dev server stopped")
    finally:
        listener.sock.close()


async def worker_only(settings: Settings) -> None:
    from worker.main import serve

    # No lock: a worker may run beside `tocsin up` on the same home (the outbox is safe to share). `serve`
    # still makes what it writes owner-only.
    await serve(settings)


async def receiver_only(settings: Settings) -> None:
    """The receiver alone, against TEMPORAL_ADDRESS or the local server, so it can be scaled apart.
    It takes no lock on TOCSIN_HOME and writes nothing there: it keeps no state files."""
    from tocsin.receiver.serve import announce, bind, build_server, serve_until, temporal_app

    policy, warnings = load_paging_policy(settings.policy, settings.home)
    for warning in warnings:
        _say(f"tocsin: {warning}")
    config = load_receiver_config()
    listener = bind(settings, config)
    stop = _stop_event()
    try:
        connecting = asyncio.create_task(connect_when_ready(settings))
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait([connecting, stopping], return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not connecting.done():  # Ctrl-C while waiting for Temporal
            connecting.cancel()
            return
        client = connecting.result()
        _say(
            f"tocsin: receiver connected to Temporal {settings.target} (namespace {settings.namespace}); "
            f"policy {settings.policy}\n{announce(listener, config)}\ntocsin: Ctrl-C stops it."
        )
        await serve_until(build_server(temporal_app(client, policy, config)), listener, stop)
        _say("tocsin: receiver stopped")
    finally:
        listener.sock.close()
