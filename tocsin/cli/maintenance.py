"""`tocsin maintenance start|list|end`: one-off windows in the registry workflow, and the policy's weekly ones.

While a window matches an incident (its service, and every label it names), the incident records everything
and pages nobody; when the window ends, an incident still firing pages once (docs/maintenance.md).
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Annotated

import typer
from pydantic import ValidationError

from tocsin.cli.common import CliError, Connect, JsonFlag, on_temporal, parse_labels
from tocsin.cli.output import emit_json, print_table
from tocsin.durations import parse_duration
from tocsin.maintenance.client import MaintenanceError, current_windows, end_window, start_window
from tocsin.maintenance.contracts import EndWindow, StartWindow, Window
from tocsin.maintenance.windows import scheduled_next
from tocsin.policy.overrides import load_paging_policy
from tocsin.settings import Settings

app = typer.Typer(help="maintenance windows: hold the pages of matching incidents, then page once when one ends")

HEADERS = ["window", "service", "labels", "from", "until", "by", "reason"]


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container user without a passwd entry
        return "unknown"


@app.command("start", help="start a window now; prints its id")
def start_command(
    service: Annotated[str, typer.Option("--service", help="the service whose incidents it holds")],
    duration: Annotated[str, typer.Option("--for", help="how long, e.g. 30m or '2 hours' (at most 7 days)")],
    reason: Annotated[str, typer.Option("--reason", help="why, shown on every incident it holds")],
    label: Annotated[
        list[str] | None,
        typer.Option("--label", metavar="NAME=VALUE", help="hold only incidents with this label (repeatable)"),
    ] = None,
    by: Annotated[str | None, typer.Option("--by", help="who starts it (default: your login name)")] = None,
    as_json: JsonFlag = False,
) -> None:
    # Bad input is a plain ValueError: main's handler makes it one line and exit 2, like every other.
    labels = parse_labels(label)
    try:
        length = parse_duration(duration)
    except ValueError as err:
        raise ValueError(f"--for {duration}: {err}") from None
    # A window the contract refuses is a ValidationError: main says what is wrong in one line, exit 2.
    request = StartWindow(service=service, labels=labels, duration=length, reason=reason, by=by or _who())

    async def starting(settings: Settings, connect: Connect) -> None:
        window = await _refused_is_error(start_window(await connect(), request))
        if as_json:
            emit_json(window)
        else:
            print(window.id)

    on_temporal(starting)


@app.command("end", help="end a window now: incidents it held and that still fire page once")
def end_command(
    window_id: Annotated[str, typer.Argument(metavar="ID", help="the window id (`tocsin maintenance list`)")],
    by: Annotated[str | None, typer.Option("--by", help="who ends it (default: your login name)")] = None,
) -> None:
    try:
        request = EndWindow(id=window_id, by=by or _who())
    except ValidationError:
        raise ValueError(f"{window_id!r} is no window id (they look like mw-1a2b3c4d)") from None

    async def ending(settings: Settings, connect: Connect) -> None:
        window = await _refused_is_error(end_window(await connect(), request))
        print(f"{window.id} ended at {window.ends_at:%H:%M:%S}Z; incidents it held that still fire page now")

    on_temporal(ending)


@app.command("list", help="open one-off windows and the policy's weekly ones (running or next)")
def list_command(as_json: JsonFlag = False) -> None:
    async def listing(settings: Settings, connect: Connect) -> None:
        policy, warnings = load_paging_policy(settings.policy, settings.home)
        for warning in warnings:
            print(f"tocsin: {warning}", file=sys.stderr)
        now = datetime.now(UTC)
        rows = list((await current_windows(await connect())).windows)
        rows += [scheduled_next(w, now) for w in policy.maintenance]
        if as_json:
            emit_json([w.model_dump(mode="json") for w in rows])
            return
        if not rows:
            print("no maintenance window is open, and the policy declares none")
            return
        print_table(HEADERS, [_cells(w, now) for w in rows])

    on_temporal(listing)


def _cells(window: Window, now: datetime) -> list[str]:
    labels = ", ".join(f"{k}={v}" for k, v in window.labels.items()) or "-"
    starts = "running" if window.starts_at <= now else f"{window.starts_at:%Y-%m-%d %H:%M}Z"
    return [window.id, window.service, labels, starts, f"{window.ends_at:%Y-%m-%d %H:%M}Z", window.by, window.reason]


async def _refused_is_error(pending: Awaitable[Window]) -> Window:
    try:
        return await pending
    except MaintenanceError as err:
        raise CliError(str(err)) from None
