"""Rotations in time: whose shift it is at an instant, the handoffs between, and who covers by override. Pure.

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

Zone rules come from the IANA database through zoneinfo (see tocsin.roster.resolve on replay).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from tocsin.policy.roster_schema import Roster, RosterOverride, Rotation

_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


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


def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)  # cached by zoneinfo: the file is read once per process


def local_text(moment: datetime, timezone: str) -> str:
    """'Mon 2025-03-03 09:00 CET': a weekday table of our own, so no locale can change the text."""
    local = moment.astimezone(zone(timezone))
    return f"{_WEEKDAYS[local.weekday()]} {local:%Y-%m-%d %H:%M} {local.tzname()}"


def utc(moment: datetime) -> datetime:
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
    at = utc(at)
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
    rotation = rotation_named(roster, rotation_name)
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
    at = utc(at)
    chosen: RosterOverride | None = None
    for override in roster.overrides:
        if override.rotation != rotation_name or not utc(override.start) <= at < utc(override.end):
            continue
        if override.covering is not None and override.covering != scheduled:
            continue
        if chosen is None or utc(override.start) >= utc(chosen.start):
            chosen = override
    return chosen


def schedule(roster: Roster, rotation_name: str, start: datetime, end: datetime) -> list[Segment]:
    """Who is on call from `start` to `end`: one segment per shift, split where an override starts or ends."""
    rotation = rotation_named(roster, rotation_name)
    start, end = utc(start), utc(end)
    if end <= start:
        return []
    cuts = {start, end}
    index = shift_index(rotation, start)
    while (handoff := handoff_at(rotation, index + 1)) < end:
        cuts.add(handoff)
        index += 1
    for each in roster.overrides:
        if each.rotation == rotation_name:
            cuts.update(t for t in (utc(each.start), utc(each.end)) if start < t < end)
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
    at = utc(at)
    shift = shift_at(roster, rotation_name, at)
    if shift.start is not None:
        since = shift.start
    else:  # before the first shift only a whole-rotation override can apply: look back to the earliest
        since = min([at, *(utc(o.start) for o in roster.overrides if o.rotation == rotation_name)])
    segment = next(s for s in schedule(roster, rotation_name, since, shift.end) if s.start <= at < s.end)
    return shift, segment


def rotation_named(roster: Roster, name: str) -> Rotation:
    try:
        return roster.rotations[name]
    except KeyError:
        known = ", ".join(roster.rotations) or "none"
        raise ValueError(f"no rotation named {name!r} (rotations: {known})") from None
