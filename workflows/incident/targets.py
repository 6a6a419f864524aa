"""From an escalation target to the addresses a channel needs, through the policy's roster. Pure.

`primary_oncall` on the phone step becomes whoever is on call at that moment of workflow time, and their
phone number; a target the roster does not know stays the plain name it was (policies without a roster).
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from tocsin.roster import ResolvedTarget

# Which contact field each person-addressed channel uses.
_PERSON_FIELD = {"sms": "phone", "phone": "phone", "email": "email", "pagerduty": "pagerduty", "slack": "slack"}


def addresses(resolved: ResolvedTarget, channel: str) -> list[tuple[str, str]]:
    """(who, address) pairs to deliver to; empty when nobody can be reached on this channel."""
    if resolved.kind == "unknown":
        return [(resolved.target, resolved.target)]
    if resolved.kind == "channel" or (channel == "slack" and resolved.channel):
        return [(resolved.channel or resolved.target, resolved.channel or resolved.target)]
    field = _PERSON_FIELD.get(channel)
    if field is None:
        # Channels that address a place, not a person (Statuspage, GitHub, Teams, a webhook).
        return [(resolved.name, resolved.target)]
    pairs = []
    for person in resolved.people:
        address = getattr(person, field)
        if address:
            pairs.append((person.id, address))
    return pairs


def stakeholder_channel(resolved: ResolvedTarget) -> str:
    """How a stakeholder hears about the incident: a team's (or the named) Slack channel when there is one,
    else email to each person; a name the roster does not know keeps the outbox's `stakeholders` channel,
    so nothing is silently dropped from a policy without a roster."""
    if resolved.kind == "unknown":
        return "stakeholders"
    return "slack" if resolved.channel else "email"
