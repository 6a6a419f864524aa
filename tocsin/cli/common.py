"""What the commands share: the one-line error, the connection to Temporal, labels, and recurring options."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Annotated, Any

import typer
from temporalio.client import Client

from tocsin.client import connect
from tocsin.settings import Settings, load_settings

Connect = Callable[[], Awaitable[Client]]
"""Commands connect only once their own input is valid, so a typo is reported as a typo even offline."""


class CliError(Exception):
    """Printed as one line on stderr; the command exits non-zero."""


def parse_labels(pairs: list[str] | None) -> dict[str, str]:
    """`--label NAME=VALUE` options, as a dict; one line of error for a malformed one."""
    labels = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            # Bad input, not a refusal: main makes a ValueError exit 2, as its contract says.
            raise ValueError(f"--label {pair!r}: expected NAME=VALUE")
        labels[name] = value
    return labels


def on_temporal(command: Callable[[Settings, Connect], Coroutine[Any, Any, None]]) -> None:
    """Run an async command with the settings and a way to connect that it calls once its input checks out."""
    settings = load_settings()

    async def connect_once() -> Client:
        try:
            return await connect(settings)
        except RuntimeError:
            # The SDK's reason is a Rust transport dump; the address and the likely cause help more.
            hint = " (is `tocsin up` running?)" if settings.embedded else ""
            raise CliError(f"cannot reach Temporal at {settings.target}{hint}") from None

    asyncio.run(command(settings, connect_once))


# Options and arguments several commands declare alike. A bool option named once (`--json`) is a plain flag:
# typer adds no `--no-json`.
JsonFlag = Annotated[bool, typer.Option("--json")]
PolicyOption = Annotated[str | None, typer.Option("--policy", help="default: TOCSIN_POLICY or policies/default.yaml")]
RequiredBy = Annotated[str, typer.Option("--by")]
IncidentKey = Annotated[str, typer.Argument(metavar="KEY", help="the incident key")]
