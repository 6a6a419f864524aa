"""`tocsin heartbeats`: each heartbeat the policy declares, its last ping and its state (the workflow's query)."""

from __future__ import annotations

import sys

import typer
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from tocsin.cli.common import Connect, JsonFlag, on_temporal
from tocsin.cli.output import emit_json, print_table
from tocsin.heartbeat.contracts import HeartbeatStatus, heartbeat_workflow_id
from tocsin.policy.overrides import load_paging_policy
from tocsin.settings import Settings

app = typer.Typer()

HEADERS = ["heartbeat", "state", "last ping", "due", "pings", "misses", "open incident"]


@app.command("heartbeats", help="each heartbeat in the policy: its last ping and whether it is ok or missed")
def heartbeats_command(as_json: JsonFlag = False) -> None:
    async def listing(settings: Settings, connect: Connect) -> None:
        await show(connect, settings, as_json)

    on_temporal(listing)


async def statuses(client: Client, names: list[str]) -> list[HeartbeatStatus]:
    """Each heartbeat's own answer; one never pinged has no workflow yet and waits for its first ping."""
    out = []
    for name in names:
        handle = client.get_workflow_handle(heartbeat_workflow_id(name))
        try:
            out.append(await handle.query("status", result_type=HeartbeatStatus))
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            out.append(
                HeartbeatStatus(
                    name=name, state="waiting", last_ping=None, due=None, pings=0, misses=0, open_incident=None
                )
            )
    return out


async def show(connect: Connect, settings: Settings, as_json: bool) -> None:
    policy, warnings = load_paging_policy(settings.policy, settings.home)
    for warning in warnings:
        print(f"tocsin: {warning}", file=sys.stderr)
    if not policy.heartbeats:
        print("the policy declares no heartbeats (see `heartbeats:` in docs/receiving-alerts.md)")
        return
    rows = await statuses(await connect(), sorted(policy.heartbeats))
    if as_json:
        emit_json([row.model_dump(mode="json") for row in rows])
        return
    print_table(
        HEADERS,
        [
            [r.name, r.state, r.last_ping or "never", r.due or "-", r.pings, r.misses, r.open_incident or "-"]
            for r in rows
        ],
    )
