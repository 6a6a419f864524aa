"""Where each of the seed's automatic actions goes, and what stakeholders are told.

A pure table, so the workflow can derive the deliveries deterministically. The channels issue swaps the
outbox for real vendors behind the same (channel, target) pairs.
"""

from __future__ import annotations

from typing import NamedTuple

from tocsin.incident.contracts import IncidentState


class Route(NamedTuple):
    channel: str
    target: str
    message: str


def automatic_action_route(action: str, state: IncidentState) -> Route:
    title = f"[{state.severity}] {state.title} ({state.service})"
    war_room = f"#inc-{state.key}"
    table = {
        "create_war_room": Route("slack", war_room, f"War room opened for {title}"),
        "create_slack_channel": Route("slack", war_room, f"Channel opened for {title}"),
        "notify_executives": Route("email", "executives", f"Executive notice: {title}"),
        "trigger_emergency_response": Route("pagerduty", "emergency_response", f"Emergency response: {title}"),
        "start_status_page_incident": Route("statuspage", state.service, f"Investigating: {state.title}"),
        "notify_team": Route("slack", f"team:{state.service}", f"New incident: {title}"),
        "notify_stakeholders": Route("stakeholders", "all", f"New incident: {title}"),
        "create_ticket": Route("github", "tickets", f"Ticket: {title}"),
        "schedule_fix": Route("github", "backlog", f"Schedule fix: {title}"),
    }
    return table[action]
