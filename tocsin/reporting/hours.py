"""Out of hours, in the paged person's own timezone (the roster's `timezone`).

The policy has no working-hours setting, so the report uses one stated rule for everyone: a page is out of
hours when it reaches someone before 09:00 or from 18:00 on their local clock, or on a Saturday or Sunday.
The wall clock is the person's, daylight saving time included: 07:30 UTC on a Monday is 08:30 (out of hours)
in Berlin in winter and 09:30 (in hours) in summer.
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAY_STARTS = time(9, 0)
DAY_ENDS = time(18, 0)
WEEKEND = (5, 6)  # datetime.weekday(): Saturday, Sunday
RULE = "before 09:00, from 18:00, or on a Saturday or Sunday, on the paged person's clock (roster timezone)"


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


def out_of_hours(at: datetime, timezone: str) -> bool:
    there = local(at, timezone)
    return there.weekday() in WEEKEND or not DAY_STARTS <= there.time() < DAY_ENDS
