"""Durations as people write them in policy files: "5 minutes", "1 hour", "90s", "1h30m".

Policies are read by humans at 3 a.m.; "5 minutes" is unambiguous where "300" is not.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

_UNITS: dict[str, int] = {
    "ms": 0,  # handled separately: sub-second values only make sense in tests
    "s": 1,
    "sec": 1,
    "secs": 1,
    "second": 1,
    "seconds": 1,
    "m": 60,
    "min": 60,
    "mins": 60,
    "minute": 60,
    "minutes": 60,
    "h": 3600,
    "hr": 3600,
    "hrs": 3600,
    "hour": 3600,
    "hours": 3600,
    "d": 86400,
    "day": 86400,
    "days": 86400,
    "w": 604800,
    "week": 604800,
    "weeks": 604800,
}

_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]+)\s*,?\s*(?:and\s+)?")


def parse_duration(text: str) -> timedelta:
    """Parse "5 minutes", "2h", "1 hour 30 minutes", "1h30m" or "500ms".

    Raises ValueError with a message fit to show a person.
    """
    raw = text.strip()
    if not raw:
        raise ValueError("empty duration (expected e.g. '5 minutes')")
    pos = 0
    total = 0.0
    while pos < len(raw):
        m = _PART.match(raw, pos)
        if not m or m.end() == pos:
            raise ValueError(f"invalid duration {text!r} (expected e.g. '5 minutes', '90s', '1h30m')")
        amount, unit = float(m.group(1)), m.group(2).lower()
        if unit == "ms":
            total += amount / 1000
        elif unit in _UNITS:
            total += amount * _UNITS[unit]
        else:
            raise ValueError(f"invalid duration {text!r}: unknown unit {unit!r}")
        pos = m.end()
    return timedelta(seconds=total)


def format_duration(value: timedelta) -> str:
    """The inverse of parse_duration, in the largest exact unit ("5 minutes", "90 seconds")."""
    seconds = value.total_seconds()
    if seconds != int(seconds):
        return f"{round(seconds * 1000)}ms"
    whole = int(seconds)
    for name, size in (("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60)):
        if whole and whole % size == 0:
            n = whole // size
            return f"{n} {name}{'' if n == 1 else 's'}"
    return f"{whole} second{'' if whole == 1 else 's'}"


def format_elapsed(value: timedelta) -> str:
    """How long something took, for people: "1h 5m 3s", "4m 0s", "12s"."""
    total = max(int(value.total_seconds()), 0)
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m {seconds}s"
    return f"{minutes}m {seconds}s" if minutes else f"{seconds}s"


def _coerce(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("a duration must be text such as '5 minutes'")
    if isinstance(value, int | float):
        # Bare numbers are ambiguous (seconds? minutes?); refuse them rather than guess.
        raise ValueError(f"bare number {value!r} is ambiguous: write a unit, e.g. '{value} minutes'")
    if isinstance(value, str):
        return parse_duration(value)
    raise ValueError(f"expected a duration such as '5 minutes', got {type(value).__name__}")


Duration = Annotated[
    timedelta,
    BeforeValidator(_coerce),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]
"""A pydantic field type: accepts human text, serialises back to it in JSON."""
