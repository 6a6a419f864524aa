"""What storm consolidation passes around: the incident asks, the storm guard decides, the storm incident lists.

One model per activity, update and signal (tocsin.policy.storm holds the decisions, workflows/storm_guard.py
their durable home). A member is a few short fields, so a storm of thousands stays far below payload limits.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

STORM_GUARD_WORKFLOW_ID = "tocsin-storm-guard"
# Members a storm incident lists one by one; beyond this it counts them (by severity and service).
MAX_LISTED_MEMBERS = 2000
MEMBER_TITLE_MAX = 120


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StormMember(_Model):
    """A new incident, as a storm lists it."""

    key: str
    severity: str
    service: str
    title: str = Field(max_length=MEMBER_TITLE_MAX)
    opened_at: datetime
    # True for the incidents of the window that paged on their own before the storm began.
    paged: bool = False


class AdmitRequest(_Model):
    """Activity `storm_admit`: a new incident asks whether it pages on its own or joins a storm."""

    member: StormMember
    # Opened by a person (the CLI): counted, never held; a human asking for an incident gets one.
    manual: bool = False


class GuardAdmit(_Model):
    """Signal `admit` to the storm guard; the threshold and window come from the worker's own policy. The
    guard answers with the signal `storm_decision` to `reply_to` (the asking incident's workflow id)."""

    member: StormMember
    manual: bool = False
    threshold: int = Field(ge=1)
    window: timedelta
    reply_to: str


class AdmitSent(_Model):
    """What the `storm_admit` activity did: asked the guard, or not (consolidation is off)."""

    asked: bool
    reason: str = ""


class JoinRequest(_Model):
    """Activity `storm_join`: add members to the storm incident, opening it if need be."""

    storm_key: str
    members: list[StormMember] = Field(min_length=1, max_length=1000)


class AdmitAnswer(_Model):
    """Signal `storm_decision` to the asking incident."""

    held: bool
    reason: str
    storm_key: str | None = None
    # Only in the answer that starts a storm: the window's incidents that paged before it began.
    earlier: list[StormMember] = Field(default_factory=list)


class ActiveStorm(_Model):
    key: str
    started_at: datetime
    last_at: datetime
    members: int = 0
    # The most severe member held so far. A more severe new incident is not noise of this storm: up to the
    # threshold of them (counted per severity in `alone`) page on their own, as before any storm; past that
    # they storm too, join, and make the storm as severe as they are. None only in state carried from before
    # this field existed: then every member is held.
    worst: str | None = None
    alone: dict[str, int] = Field(default_factory=dict)


class StormGuardState(_Model):
    """Carried across continue-as-new: the window's new incidents, the storm under way, the recent answers."""

    recent: list[StormMember] = Field(default_factory=list)
    storm: ActiveStorm | None = None
    # key -> the answer it got, within the window: a retried admission gets the same answer.
    decided: dict[str, AdmitAnswer] = Field(default_factory=dict)
    decided_at: dict[str, datetime] = Field(default_factory=dict)


class StormMembers(_Model):
    """Signal `storm_members` to a storm incident: incidents that joined it (repeats are ignored)."""

    members: list[StormMember] = Field(min_length=1, max_length=1000)
    # The policy's window: the burst is over once nobody has joined for this long.
    window: timedelta


class StormRecord(_Model):
    """A storm incident's own part of its state: who joined, and what it said when the burst ended."""

    members: list[StormMember] = Field(default_factory=list)
    # Members beyond MAX_LISTED_MEMBERS: counted here and below, not listed.
    folded: int = 0
    by_severity: dict[str, int] = Field(default_factory=dict)
    first_at: datetime | None = None
    last_at: datetime | None = None
    window: timedelta = timedelta(minutes=5)
    summarized: bool = False

    @property
    def count(self) -> int:
        return len(self.members) + self.folded
