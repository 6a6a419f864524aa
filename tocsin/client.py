"""One way to reach Temporal, with the pydantic data converter, for the CLI, the worker and tests."""

from __future__ import annotations

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
