"""Who an escalation target is at an instant: a pure, deterministic function of (roster, target, at).

No I/O of its own and no clock: the incident workflow passes `workflow.now()` and gets the same answer on
replay. Its one input besides the arguments is the IANA zone database, read through the standard library's
zoneinfo. Temporal's workflow sandbox passes zoneinfo through and allows `ZoneInfo(key)` (it restricts only
`from_file`, `clear_cache` and `reset_tzpath`); the first use of a zone reads its rules from the system's
zone files or the `tzdata` package and caches them for the process. The rules are thus an input like code:
workers that replay a history should have the same zone data as the one that made it (tzdata changes only
move handoffs for the zones and dates a release touches).

Rules, in one place:
- A rotation's shift `k` starts at its handoff time, in its timezone, on `start + k` days (daily) or weeks
  (weekly), and belongs to `members[k % len(members)]`. Handoffs keep their wall-clock time across DST: a
  handoff time a spring-forward skips happens when the clocks jump (02:30 -> 03:30 summer time); one a
  fall-back repeats happens the first time round.
- Before the first handoff, and in a rotation without members, nobody is scheduled.
- An override holds from `from` (inclusive) to `until` (exclusive). With `covering`, it applies only while
  that member is the scheduled one; without, it covers the whole rotation, whoever is scheduled (also before
  the first shift and in an empty rotation). `covering` names the scheduled member, not another override's
  stand-in. Of the overrides that apply, the one that starts latest wins; on a tie, the one listed last
  (an overrides file is merged after the policy's own list).
- An empty result is not an error: it says why, so the workflow can go to the next step at once and say so.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from tocsin.policy.roster_models import Person, Roster, RosterOverride, Rotation

TargetKind = Literal["person", "team", "rotation", "channel", "unknown"]
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


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


class Shift(_Frozen):
    rotation: str
    index: int = Field(description="0 is the first shift; -1 is the time before it")
    start: datetime | None = Field(description="UTC; None before the first shift")
    end: datetime = Field(description="UTC: the next handoff")
    scheduled: str | None = Field(description="whose turn it is; None without members or before the first shift")


class Segment(_Frozen):
    """A stretch of time in which the same person is on call for the same reason."""

    rotation: str
    start: datetime
    end: datetime
    shift: int
    scheduled: str | None
    person: str | None = Field(description="who is on call: the override's `by`, else the scheduled member")
    override: RosterOverride | None = None


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


def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)  # cached by zoneinfo: the file is read once per process


def local_text(moment: datetime, timezone: str) -> str:
    """'Mon 2025-03-03 09:00 CET': a weekday table of our own, so no locale can change the text."""
    local = moment.astimezone(zone(timezone))
    return f"{_WEEKDAYS[local.weekday()]} {local:%Y-%m-%d %H:%M} {local.tzname()}"


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{moment.isoformat()} has no timezone: on-call resolution needs an aware datetime")
    # Aware datetimes that share a tzinfo compare by wall clock, which is wrong across a DST change: use UTC.
    return moment.astimezone(UTC)


def handoff_at(rotation: Rotation, index: int) -> datetime:
    """The start of shift `index`, in UTC."""
    day = rotation.start + timedelta(days=index * rotation.period_days)
    # fold=0: in a gap this is the pre-transition offset (the handoff lands after the jump); in a repeated
    # hour, the first occurrence.
    return datetime.combine(day, rotation.handoff, tzinfo=zone(rotation.timezone)).astimezone(UTC)


def shift_index(rotation: Rotation, at: datetime) -> int:
    """The shift that `at` falls in; -1 before the first handoff."""
    at = _utc(at)
    if at < handoff_at(rotation, 0):
        return -1
    local_day = at.astimezone(zone(rotation.timezone)).date()
    index = max(0, (local_day - rotation.start).days // rotation.period_days)
    # The local date is right to within one shift (a handoff later in the day has not happened yet).
    while index > 0 and handoff_at(rotation, index) > at:
        index -= 1
    while handoff_at(rotation, index + 1) <= at:
        index += 1
    return index


def shift_at(roster: Roster, rotation_name: str, at: datetime) -> Shift:
    rotation = _rotation(roster, rotation_name)
    index = shift_index(rotation, at)
    members = rotation.members
    return Shift(
        rotation=rotation_name,
        index=index,
        start=handoff_at(rotation, index) if index >= 0 else None,
        end=handoff_at(rotation, index + 1),
        scheduled=members[index % len(members)] if members and index >= 0 else None,
    )


def active_override(roster: Roster, rotation_name: str, scheduled: str | None, at: datetime) -> RosterOverride | None:
    """The override in force at `at`: the latest-starting that applies, the last listed on a tie."""
    at = _utc(at)
    chosen: RosterOverride | None = None
    for override in roster.overrides:
        if override.rotation != rotation_name or not _utc(override.start) <= at < _utc(override.end):
            continue
        if override.covering is not None and override.covering != scheduled:
            continue
        if chosen is None or _utc(override.start) >= _utc(chosen.start):
            chosen = override
    return chosen


def schedule(roster: Roster, rotation_name: str, start: datetime, end: datetime) -> list[Segment]:
    """Who is on call from `start` to `end`: one segment per shift, split where an override starts or ends."""
    rotation = _rotation(roster, rotation_name)
    start, end = _utc(start), _utc(end)
    if end <= start:
        return []
    cuts = {start, end}
    index = shift_index(rotation, start)
    while (handoff := handoff_at(rotation, index + 1)) < end:
        cuts.add(handoff)
        index += 1
    for each in roster.overrides:
        if each.rotation == rotation_name:
            cuts.update(t for t in (_utc(each.start), _utc(each.end)) if start < t < end)
    segments: list[Segment] = []
    for lo, hi in pairwise(sorted(cuts)):
        shift = shift_at(roster, rotation_name, lo)
        override = active_override(roster, rotation_name, shift.scheduled, lo)
        segment = Segment(
            rotation=rotation_name,
            start=lo,
            end=hi,
            shift=shift.index,
            scheduled=shift.scheduled,
            person=override.by if override else shift.scheduled,
            override=override,
        )
        last = segments[-1] if segments else None
        if last and (last.shift, last.person, last.override) == (segment.shift, segment.person, segment.override):
            segments[-1] = last.model_copy(update={"end": hi})
        else:
            segments.append(segment)
    return segments


def on_call(roster: Roster, rotation_name: str, at: datetime) -> tuple[Shift, Segment]:
    """The shift at `at` and the segment holding it (its start and end: since when, and until when)."""
    at = _utc(at)
    shift = shift_at(roster, rotation_name, at)
    if shift.start is not None:
        since = shift.start
    else:  # before the first shift only a whole-rotation override can apply: look back to the earliest
        since = min([at, *(_utc(o.start) for o in roster.overrides if o.rotation == rotation_name)])
    segment = next(s for s in schedule(roster, rotation_name, since, shift.end) if s.start <= at < s.end)
    return shift, segment


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
    _utc(at)
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


def _rotation(roster: Roster, name: str) -> Rotation:
    try:
        return roster.rotations[name]
    except KeyError:
        known = ", ".join(roster.rotations) or "none"
        raise ValueError(f"no rotation named {name!r} (rotations: {known})") from None
