"""Out of hours, in the paged person's own timezone (the roster's `timezone`) and working week (the roster's
`working_hours`, default Monday to Friday, 09:00 to 18:00).

A page is out of hours when it reaches someone outside their working hours on their local clock, daylight
saving time included: 07:30 UTC on a Monday is 08:30 (out of hours) in Berlin in winter and 09:30 (in hours)
in summer. Someone who works Sunday to Thursday says so in the roster, and a Sunday page is in hours for them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tocsin.policy.fields import WEEKDAYS
from tocsin.policy.roster_schema import WorkingHours

DEFAULT_HOURS = WorkingHours()
RULE = (
    "outside the paged person's working hours on their own clock (roster timezone and working_hours; "
    "default Monday to Friday, 09:00 to 18:00)"
)


def zone(name: str) -> ZoneInfo:
    """The person's zone; UTC for a name this machine does not know (the roster validated it where it was
    written, but a report can read a roster from elsewhere)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def local(at: datetime, timezone: str) -> datetime:
    aware = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    return aware.astimezone(zone(timezone))


def out_of_hours(at: datetime, timezone: str, hours: WorkingHours | None = None) -> bool:
    week = hours or DEFAULT_HOURS
    there = local(at, timezone)
    return WEEKDAYS[there.weekday()] not in week.days or not week.start <= there.time() < week.end
