"""Which channels keep state about an incident, and what they should show as it changes. Pure.

A page is fire-and-forget, but three deliveries leave something behind that must not go stale: PagerDuty's
alert (acknowledged and resolved with the incident, or PagerDuty keeps paging people Tocsin already
reached), the war room's pinned summary, and the status page's public incident. The workflow follows each
one after its first delivery and, whenever what it should show differs from what it last showed, sends it
the incident's current state. Comparing "shown" strings rather than reacting to events makes the sync
idempotent: two changes between passes cost one update, and a sync is never sent twice for one state.
"""

from __future__ import annotations

from tocsin.durations import format_elapsed
from tocsin.incident.contracts import Follower, IncidentState
from tocsin.policy.status_page import public_update

# PagerDuty has three states; Tocsin's "mitigated" is acknowledged there (it stops PagerDuty's paging).
_PAGERDUTY_SHOWS = {
    "triggered": "triggered",
    "acknowledged": "acknowledged",
    "mitigated": "acknowledged",
    "resolved": "resolved",
}


def war_room(key: str) -> str:
    return f"#inc-{key}"


def is_followed(channel: str, target: str, key: str) -> bool:
    """Deliveries that create state which later changes must update."""
    return channel in ("pagerduty", "statuspage") or (channel == "slack" and target == war_room(key))


def shown(channel: str, state: IncidentState) -> str:
    """What this channel should show now, as a comparable string."""
    if channel == "pagerduty":
        return _PAGERDUTY_SHOWS[state.status]
    return f"{state.status}/{state.severity}"


def delivery_status(channel: str, state: IncidentState) -> str:
    """The status an adapter acts on: PagerDuty's event action and Statuspage's incident status follow it."""
    return _PAGERDUTY_SHOWS[state.status] if channel == "pagerduty" else state.status


def follow(followers: list[Follower], channel: str, target: str, state: IncidentState) -> None:
    """Start following a delivery's channel (once per channel and target; PagerDuty once per incident)."""
    if not is_followed(channel, target, state.key):
        return
    for known in followers:
        if known.channel == channel and (channel == "pagerduty" or known.target == target):
            return
    followers.append(Follower(channel=channel, target=target, synced=shown(channel, state)))


def stale(followers: list[Follower], state: IncidentState) -> list[Follower]:
    return [f for f in followers if f.synced != shown(f.channel, state)]


def sync_text(channel: str, state: IncidentState) -> str:
    """The update's words: public ones for the status page (tocsin.policy.status_page: they name the component and
    nothing else; the Statuspage adapter words its requests the same way itself), the facts for everyone else."""
    if channel == "statuspage":
        return public_update(state.status, state.service)
    facts = [f"Status: {state.status}", f"severity {state.severity}"]
    if state.acknowledged_by and state.acknowledged_at:
        facts.append(f"acknowledged by {state.acknowledged_by} at {state.acknowledged_at:%H:%M}Z")
    if state.mitigated_at:
        facts.append(f"mitigated at {state.mitigated_at:%H:%M}Z")
    if state.resolved_at:
        lasted = format_elapsed(state.resolved_at - state.opened_at)
        by = f" by {state.resolved_by}" if state.resolved_by else ""
        facts.append(f"resolved{by} after {lasted}")
        if state.resolution_summary:
            facts.append(state.resolution_summary)
    return "; ".join(facts)
