"""PagerDuty's webhooks (v3), verified and read: who did what in PagerDuty to which of Tocsin's incidents.

Signature: `X-PagerDuty-Signature: v1=<hex HMAC-SHA256 of the raw body>[,v1=...]`, one signature per secret of
the subscription, so during a rotation PagerDuty sends several and Tocsin may hold several: any pair that
matches makes the delivery authentic. Every pair is compared, in constant time, so the time taken says
nothing about which one matched or how much of a guess was right.

Which incident: PagerDuty's incident carries `incident_key`, the Events API `dedup_key` of the alert that
opened it. Tocsin's PagerDuty channel sends the incident key as that dedup key (tocsin/channels/pagerduty.py),
so an `incident_key` that has the shape of a Tocsin key names the incident; any other is not Tocsin's.

Who: only a PagerDuty user vouched for by the signed event (`agent`, a `user_reference`) and found in the
roster's `pagerduty:` ids acts. An event whose agent is a service or an integration is PagerDuty reporting
what an integration told it, Tocsin's own events among them: acting on it would answer Tocsin's own echo.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from tocsin.incident.contracts import KEY_PATTERN
from tocsin.policy.roster_schema import Roster
from tocsin.responders.contracts import InboundAction, Verb
from tocsin.responders.identity import person_for

SIGNATURE_HEADER = "X-PagerDuty-Signature"
SIGNATURE_VERSION = "v1="
# A header carries one signature per secret of the subscription: a handful during a rotation, never dozens.
MAX_SIGNATURES = 10
VERBS: dict[str, Verb] = {
    "incident.acknowledged": "acknowledge",
    "incident.resolved": "resolve",
    "incident.escalated": "escalate",
    "incident.reassigned": "take",
}
_KEY = re.compile(KEY_PATTERN)


class MalformedWebhook(ValueError):
    """A signed body that is not a v3 webhook envelope; the message names the field, never a value."""


class _Reference(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1, max_length=64)
    type: str = Field(default="", max_length=64)


class _Incident(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str = ""
    incident_key: str | None = None
    assignees: list[_Reference] = Field(default_factory=list)


class WebhookEvent(BaseModel):
    """The part of `event` that Tocsin reads; the rest of PagerDuty's payload is ignored."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1, max_length=200)
    event_type: str = Field(min_length=1, max_length=100)
    agent: _Reference | None = None
    # Read as an incident only for the event types that carry one (VERBS); others have other shapes.
    data: dict[str, object] | None = None


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="ignore")

    event: WebhookEvent


@dataclass(frozen=True)
class Ignored:
    """Nothing to act on, and why: answered 200, so PagerDuty does not deliver it again."""

    reason: str
    kind: Literal["event_type", "not_tocsins", "not_a_person", "unknown_person"]


def verify(secrets: Sequence[SecretStr], header: str | None, body: bytes) -> bool:
    """True if any `v1=` signature in the header is the HMAC-SHA256 of the raw body under any of the secrets."""
    if not header or not secrets:
        return False
    offered = [p.strip()[len(SIGNATURE_VERSION) :] for p in header.split(",") if p.strip().startswith("v1=")]
    if not offered or len(offered) > MAX_SIGNATURES:
        return False
    expected = [hmac.new(s.get_secret_value().encode(), body, hashlib.sha256).hexdigest().encode() for s in secrets]
    matched = False
    for mine in expected:
        for theirs in offered:
            # No early exit: every pair costs the same whichever matched. Bytes, so a non-ASCII header compares.
            matched |= hmac.compare_digest(mine, theirs.encode("utf-8", "replace"))
    return matched


def parse(body: bytes) -> WebhookEvent:
    """The webhook's event; MalformedWebhook if the body is not `{"event": {"id", "event_type", ...}}`."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise MalformedWebhook("the body is not JSON") from None
    try:
        return _Envelope.model_validate(data).event
    except ValidationError as err:
        where = ", ".join(".".join(str(p) for p in ("event", *e["loc"])) for e in err.errors()[:5])
        raise MalformedWebhook(f"not a webhooks v3 envelope: {where}") from None


def _incident(event: WebhookEvent) -> _Incident:
    try:
        return _Incident.model_validate(event.data or {})
    except ValidationError:
        raise MalformedWebhook(f"{event.event_type}: event.data is not an incident") from None


def incident_key(event: WebhookEvent) -> str | None:
    """The Tocsin incident the event is about: its `incident_key`, when that has the shape of Tocsin's keys."""
    key = _incident(event).incident_key
    return key if key is not None and _KEY.match(key) else None


def _person(roster: Roster, event: WebhookEvent, verb: Verb) -> str | Ignored:
    agent = event.agent
    if verb == "take":
        # Reassigned: PagerDuty vouches for whom it now notifies. Prefer the agent if they took it themselves.
        ids = [a.id for a in _incident(event).assignees if a.type in ("", "user_reference")]
        if agent is not None and agent.id in ids:
            ids.remove(agent.id)
            ids.insert(0, agent.id)
        for user in ids:
            person = person_for(roster, "pagerduty", user)
            if person is not None:
                return person
        named = ", ".join(ids[:5]) or "nobody"
        return Ignored(f"no new assignee ({named}) is a pagerduty: id in Tocsin's roster", "unknown_person")
    if agent is None or agent.type != "user_reference":
        kind = agent.type if agent is not None else "no agent"
        return Ignored(f"{event.event_type} by {kind}, not by a person: nothing to act on", "not_a_person")
    person = person_for(roster, "pagerduty", agent.id)
    if person is None:
        return Ignored(f"PagerDuty user {agent.id} is not a pagerduty: id in Tocsin's roster", "unknown_person")
    return person


def action_for(event: WebhookEvent, roster: Roster) -> InboundAction | Ignored:
    """The update a verified event asks for, as the roster person PagerDuty vouched for, or why none.

    The event's id is the update's id (`pagerduty:<event id>`), so a redelivered webhook lands once."""
    verb = VERBS.get(event.event_type)
    if verb is None:
        return Ignored(f"{event.event_type} is not an event Tocsin acts on", "event_type")
    key = incident_key(event)
    if key is None:
        return Ignored("the PagerDuty incident was not opened by Tocsin (its incident_key is not one)", "not_tocsins")
    person = _person(roster, event, verb)
    if isinstance(person, Ignored):
        return person
    return InboundAction(vendor="pagerduty", verb=verb, person=person, event_id=event.id, key=key)
