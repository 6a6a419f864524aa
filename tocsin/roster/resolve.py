"""Who an escalation target is at an instant: a pure, deterministic function of (roster, target, at).

No I/O of its own and no clock: the incident workflow passes `workflow.now()` and gets the same answer on
replay. Its one input besides the arguments is the IANA zone database, read through the standard library's
zoneinfo. Temporal's workflow sandbox passes zoneinfo through and allows `ZoneInfo(key)` (it restricts only
`from_file`, `clear_cache` and `reset_tzpath`); the first use of a zone reads its rules from the system's
zone files or the `tzdata` package and caches them for the process. The rules are thus an input like code:
workers that replay a history should have the same zone data as the one that made it (tzdata changes only
move handoffs for the zones and dates a release touches).

Rotations in time (shifts, handoffs, overrides) are tocsin.roster.shifts. An empty result is not an error:
it says why, so the workflow can go to the next step at once and say so.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tocsin.policy.roster_schema import Person, Roster, RosterOverride
from tocsin.roster.shifts import Shift, handoff_at, local_text, on_call, utc

TargetKind = Literal["person", "team", "rotation", "channel", "unknown"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Contact(_Frozen):
    """A person and every way to reach them."""

    id: str = Field(description="the roster key")
    name: str
    timezone: str
    email: str | None = None
    phone: str | None = None
    slack: str | None = None
    pagerduty: str | None = None


class ResolvedTarget(_Frozen):
    target: str = Field(description="as asked, e.g. 'primary_oncall', 'team:sre', '#incidents'")
    kind: TargetKind
    name: str = Field(description="the target less any 'kind:' prefix")
    at: datetime
    people: list[Contact] = Field(default_factory=list)
    channel: str | None = None
    reason: str = Field(description="one sentence for the timeline: who and why, or why nobody")
    # Rotations only: the shift, the override that applies, and how long this answer holds.
    shift: Shift | None = None
    override: RosterOverride | None = None
    since: datetime | None = None
    until: datetime | None = None

    @property
    def empty(self) -> bool:
        """Nobody to page and nowhere to post: the workflow escalates to the next step at once."""
        return not self.people and self.channel is None


def people_by_address(roster: Roster) -> dict[str, str]:
    """Address -> roster id: deliveries name the address (a phone number, a PagerDuty user id, an email),
    people read names (`tocsin why`, `tocsin report`)."""
    book: dict[str, str] = {}
    for pid, person in roster.people.items():
        for address in (person.pagerduty, person.phone, person.email, person.slack):
            if address:
                book[address] = pid
    return book


def contact(roster: Roster, person_id: str) -> Contact:
    person: Person = roster.people[person_id]
    return Contact(
        id=person_id,
        name=person.name or person_id,
        timezone=person.timezone,
        email=person.email,
        phone=person.phone,
        slack=person.slack,
        pagerduty=person.pagerduty,
    )


def resolve(roster: Roster, target: str, at: datetime) -> ResolvedTarget:
    """Resolve an escalation target at `at` (aware): a person, a rotation, a team, a #channel, or nobody, and why.

    A target may carry its kind ('team:sre', 'rotation:primary_oncall', 'person:alice'); without one, the name
    is looked up among people, teams and rotations (a roster name means one thing: the policy checks that).
    """
    utc(at)
    kind = roster.target_kind(target)
    prefix, sep, rest = target.partition(":")
    name = rest if sep and prefix in ("person", "team", "rotation") else target
    if kind == "channel":
        return ResolvedTarget(target=target, kind=kind, name=name, at=at, channel=target, reason=f"channel {target}")
    if kind == "person":
        found = contact(roster, name)
        reason = f"person {name} ({found.name})"
        return ResolvedTarget(target=target, kind=kind, name=name, at=at, people=[found], reason=reason)
    if kind == "team":
        return _team(roster, target, name, at)
    if kind == "rotation":
        return _rotation_target(roster, target, name, at)
    if roster.is_empty():
        reason = f"the policy has no roster, so {target!r} names nobody"
    else:
        reason = f"no person, team or rotation is named {name!r}, and it is not a #channel"
    return ResolvedTarget(target=target, kind="unknown", name=name, at=at, reason=reason)


def _team(roster: Roster, target: str, name: str, at: datetime) -> ResolvedTarget:
    team = roster.teams[name]
    people = [contact(roster, member) for member in dict.fromkeys(team.members)]
    where = f"; channel {team.channel}" if team.channel else ""
    if people:
        reason = f"team {name}: {', '.join(p.id for p in people)}{where}"
    elif team.channel:
        reason = f"team {name} has no members: its channel {team.channel} only"
    else:
        reason = f"nobody to reach for team {name}: it has no members and no channel"
    return ResolvedTarget(
        target=target, kind="team", name=name, at=at, people=people, channel=team.channel, reason=reason
    )


def _rotation_target(roster: Roster, target: str, name: str, at: datetime) -> ResolvedTarget:
    rotation = roster.rotations[name]
    shift, segment = on_call(roster, name, at)
    tz = rotation.timezone
    window = f"since {local_text(segment.start, tz)}, until {local_text(segment.end, tz)}"
    override = segment.override
    if segment.person is None:
        if not rotation.members:
            why = "the rotation has no members"
        else:
            why = f"its first shift begins {local_text(handoff_at(rotation, 0), tz)}"
        reason = f"nobody is on call for {name}: {why}"
    elif override is None:
        reason = f"{segment.person} is on call for {name} ({rotation.type} shift {shift.index}, {window})"
    else:
        whom = f"covering {override.covering}" if override.covering else "covering the whole rotation"
        note = f": {override.reason}" if override.reason else ""
        reason = f"{segment.person} is on call for {name}, {whom} (override{note}; {window})"
    return ResolvedTarget(
        target=target,
        kind="rotation",
        name=name,
        at=at,
        people=[contact(roster, segment.person)] if segment.person else [],
        reason=reason,
        shift=shift,
        override=override,
        since=segment.start,
        until=segment.end,
    )
