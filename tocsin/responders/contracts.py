"""What an inbound action is, once a vendor has vouched for who sent it, and what acting on it answered."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tocsin.incident.updates import MAX_SNOOZE, Via

Verb = Literal["acknowledge", "escalate", "resolve", "snooze", "take"]


class InboundAction(BaseModel):
    """One person's action from a vendor callback. `person` is a roster id the vendor's identity mapped to;
    `event_id` is the vendor's own id for the callback (Slack's action_ts, Twilio's MessageSid or CallSid,
    PagerDuty's event id), so a replayed callback is the same update and lands once."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    vendor: Via
    verb: Verb
    person: str = Field(min_length=1, max_length=200)
    event_id: str = Field(min_length=1, max_length=200)
    # Which incident: by key, or by the short code its page carried; neither means the person's latest page.
    key: str | None = Field(default=None, max_length=128)
    code: str | None = Field(default=None, pattern=r"^\d{4}$")
    snooze_for: timedelta | None = Field(default=None, gt=timedelta(0), le=MAX_SNOOZE)


class ActOutcome(BaseModel):
    """What the incident answered, for the vendor's reply (a Slack message, TwiML, an HTML page)."""

    key: str
    status: str
    message: str


class NotActed(Exception):
    """Nothing was changed, and why, in words fit for the person: no such incident, not in the roster, a refusal
    by the incident's own validators (already resolved...)."""

    def __init__(self, reason: str, kind: Literal["unknown_person", "no_incident", "refused"]) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind
