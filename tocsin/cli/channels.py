"""`tocsin channels`: which channels are live and which go to the outbox; live credentials are checked
without sending anything."""

from __future__ import annotations

import argparse
import asyncio
import os

from tocsin.channels.base import DeliveryError
from tocsin.channels.registry import CHANNEL_NAMES, channels_from_env
from tocsin.cli.output import emit_json, table


async def _check_all(args: argparse.Namespace) -> int:
    live = channels_from_env(os.environ)
    rows = []
    failed = 0
    for name in CHANNEL_NAMES:
        channel = live.get(name)
        if channel is None:
            rows.append({"channel": name, "mode": "outbox", "check": "not configured: deliveries go to the outbox"})
            continue
        try:
            result = await channel.check()
        except DeliveryError as err:
            failed += 1
            result = f"FAILED: {err}"
        rows.append({"channel": name, "mode": "live", "check": result})
    if args.json:
        emit_json(rows)
    else:
        print(table(["channel", "mode", "check"], [[r["channel"], r["mode"], r["check"]] for r in rows]))
    return 1 if failed else 0


def channels_command(args: argparse.Namespace) -> int:
    return asyncio.run(_check_all(args))
