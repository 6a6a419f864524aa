"""Inputs of the incident's updates. `request_id` makes a retried call land once."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tocsin.incident.contracts import IncidentStatusValue

# Where an action came from. Set by the receiver after the vendor vouched for `by` (a signed Slack, Twilio or
# PagerDuty callback, a signed email link); the CLI and `temporal workflow update` leave it unset.
Via = Literal["slack", "twilio", "pagerduty", "email"]
VIA_NAMES: dict[str, str] = {"slack": "Slack", "twilio": "SMS/voice", "pagerduty": "PagerDuty", "email": "email"}
# A snooze is bounded: paging pauses for a while, never for good.
MAX_SNOOZE = timedelta(hours=4)


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")

    by: str = Field(min_length=1, max_length=200)
    request_id: str | None = Field(default=None, max_length=200)
    via: Via | None = None

    def who(self) -> str:
        """'alice', or 'alice via Slack' when a vendor vouched for her."""
        return f"{self.by} via {VIA_NAMES[self.via]}" if self.via else self.by


class AcknowledgeRequest(_Request):
    pass


class EscalateRequest(_Request):
    reason: str = Field(default="", max_length=2000)


class ResolveRequest(_Request):
    summary: str = Field(default="", max_length=10000)


class MitigateRequest(_Request):
    summary: str = Field(default="", max_length=10000)


class AnnotateRequest(_Request):
    text: str = Field(min_length=1, max_length=10000)


class SetSeverityRequest(_Request):
    severity: str
    reason: str = Field(default="", max_length=2000)


class SnoozeRequest(_Request):
    """Pause paging for `for` (at most MAX_SNOOZE); it resumes by itself. Management escalation never pauses."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    duration: timedelta = Field(alias="for", gt=timedelta(0), le=MAX_SNOOZE)


class TakeRequest(_Request):
    """`by` makes themselves the incident's owner (acknowledging it if nobody had)."""


class UpdateResult(BaseModel):
    """What every update answers: enough for a CLI line, not the whole incident."""

    key: str
    status: IncidentStatusValue
    severity: str
    escalation_level: int
    message: str
