"""The receiver on a real uvicorn socket for one test: bound to a free loopback port, answering before the
test starts, stopped by its stop event when the test is done."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI

from tocsin.receiver.config import ReceiverConfig
from tocsin.receiver.serve import Listener, bind, build_server, serve_until
from tocsin.settings import load_settings


@contextlib.asynccontextmanager
async def serving(app: FastAPI, config: ReceiverConfig) -> AsyncIterator[tuple[httpx.AsyncClient, Listener]]:
    listener = bind(load_settings({}).model_copy(update={"http_port": 0}), config)
    stop = asyncio.Event()
    served = asyncio.create_task(serve_until(build_server(app), listener, stop))
    try:
        async with httpx.AsyncClient(base_url=listener.url) as http:
            for _ in range(100):
                try:
                    await http.get("/healthz")
                    break
                except httpx.ConnectError:
                    await asyncio.sleep(0.02)
            yield http, listener
    finally:
        stop.set()
        await asyncio.wait_for(served, 15)
