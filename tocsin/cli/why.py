"""`tocsin why KEY [--person NAME]`: every notification decision of an incident and its reason, and with a
person, the moments they were not paged and why (tocsin.incident.why decides; this prints)."""

from __future__ import annotations

import dataclasses
import sys
from typing import Annotated

import typer
from temporalio.service import RPCError

from tocsin.cli.common import Connect, IncidentKey, JsonFlag, on_temporal
from tocsin.cli.output import emit_json, print_table
from tocsin.incident.client import IncidentError, get_incident, opened_under
from tocsin.incident.why import Decision, decisions
from tocsin.policy.overrides import load_paging_policy
from tocsin.settings import Settings

app = typer.Typer()

HEADERS = ["at", "level", "kind", "who", "channel", "outcome", "reason"]


@app.command("why", help="why each notification went out, and with --person, why that person was not paged")
def why_command(
    key: IncidentKey,
    person: Annotated[str | None, typer.Option("--person", help="also when and why this person was not paged")] = None,
    as_json: JsonFlag = False,
) -> None:
    async def explaining(settings: Settings, connect: Connect) -> None:
        await explain(connect, settings, key, person, as_json)

    on_temporal(explaining)


async def explain(connect: Connect, settings: Settings, key: str, person: str | None, as_json: bool) -> None:
    client = await connect()
    state = await get_incident(client, key)
    try:
        # The roster and chain the incident paged through (overrides included), not what the policy says today.
        policy = await opened_under(client, key)
    except (IncidentError, RPCError) as err:
        policy, warnings = load_paging_policy(settings.policy, settings.home)
        for warning in warnings:
            print(f"tocsin: {warning}", file=sys.stderr)
        print(f"tocsin: the incident's own policy could not be read ({err}); using today's", file=sys.stderr)
    rows = decisions(state, policy, person)
    if as_json:
        emit_json([dataclasses.asdict(row) for row in rows])
        return
    if not rows:
        print(f"incident {key} has sent no notifications")
        return
    print_table(HEADERS, [_cells(row) for row in rows])


def _cells(row: Decision) -> list[object]:
    return [row.at, row.level or "-", row.kind, row.who, row.channel, row.outcome, row.reason]
