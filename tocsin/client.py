"""One way to reach Temporal, with the pydantic data converter, for the CLI, the worker and tests."""

from __future__ import annotations

import asyncio
import logging

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.envconfig import ClientConfigProfile

from tocsin.settings import Settings


async def connect(settings: Settings) -> Client:
    """The embedded dev server, or the server TEMPORAL_ADDRESS names.

    For an external server, TLS and API-key settings come from temporalio's envconfig (TEMPORAL_API_KEY,
    TEMPORAL_TLS_*, TEMPORAL_PROFILE, a config file): secrets stay in the environment, never in Tocsin.
    """
    if settings.embedded:
        return await Client.connect(
            settings.target, namespace=settings.namespace, data_converter=pydantic_data_converter
        )
    config = ClientConfigProfile.load().to_client_connect_config()
    config["target_host"] = settings.target
    config["namespace"] = settings.namespace
    return await Client.connect(**config, data_converter=pydantic_data_converter)


async def connect_when_ready(settings: Settings, wait: float = 60.0) -> Client:
    """Connect, retrying while the server starts: a fresh dev server opens its port before its frontend is
    healthy, and in a compose stack the worker may start before Temporal does."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        try:
            return await connect(settings)
        except RuntimeError as err:
            if loop.time() > deadline:
                raise ServerUnreachable(f"Temporal at {settings.target} did not answer within {wait:.0f}s") from err
            logging.getLogger("tocsin.client").info("waiting for Temporal at %s", settings.target)
            await asyncio.sleep(1.0)


class ServerUnreachable(RuntimeError):
    pass
