"""The tiny condition language of escalation steps: `severity == 'sev1'`, `duration > '30 minutes'`.

Parsed, never evaluated with eval(): a condition is `<field> <op> <literal>`, and the only fields are
facts about the incident. Evaluation and "when will this become true" are pure functions so the
workflow can schedule a timer for exactly the moment a condition starts to hold.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from tocsin.durations import parse_duration

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}
STATUSES = ("triggered", "acknowledged", "mitigated", "resolved")
FIELDS = ("severity", "status", "service", "duration", "escalation_level", "acknowledged")
_ORDERED_FIELDS = ("duration", "escalation_level")
_SYNTAX = re.compile(r"^\s*([a-z_]+)\s*(==|!=|>=|<=|>|<)\s*(.+?)\s*$")


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    value: str | int | bool | timedelta

    def holds(self, facts: IncidentFacts) -> bool:
        actual = getattr(facts, self.field)
        if self.field == "duration" and self.op in (">", ">="):
            # Timers fire on the second they are set for: "more than 30 minutes" is reached at 30:00,
            # not one tick later, so the page goes out when the policy says.
            return bool(actual >= self.value)
        return _OPS[self.op](actual, self.value)


@dataclass(frozen=True)
class IncidentFacts:
    severity: str
    status: str
    service: str
    duration: timedelta
    escalation_level: int
    acknowledged: bool


def _literal(text: str) -> str | int | bool:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        if text[0] in text[1:-1]:
            # "severity == 'sev1' and duration > '5m'" would otherwise compare with one long string, never hold.
            raise ValueError(f"value {text!r} is not one quoted text: write one comparison per condition")
        return text[1:-1]
    if text in ("true", "false"):
        return text == "true"
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    raise ValueError(f"value {text!r} must be quoted text, a whole number, true or false")


def parse_condition(text: str) -> Condition:
    """Parse one condition; ValueError says what is wrong in words."""
    m = _SYNTAX.match(text)
    if not m:
        raise ValueError(f"condition {text!r} is not of the form <field> <op> <value>, e.g. \"severity == 'sev1'\"")
    field, op, raw = m.groups()
    if field not in FIELDS:
        raise ValueError(f"condition {text!r}: unknown field {field!r} (known: {', '.join(FIELDS)})")
    if op not in ("==", "!=") and field not in _ORDERED_FIELDS:
        raise ValueError(f"condition {text!r}: {field} can only be compared with == or !=")
    value: str | int | bool | timedelta = _literal(raw)
    if field == "duration":
        if not isinstance(value, str):
            raise ValueError(f"condition {text!r}: duration needs quoted text such as '30 minutes'")
        if op in ("==", "!="):
            raise ValueError(f"condition {text!r}: compare duration with >, >=, < or <=")
        value = parse_duration(value)
    elif field == "escalation_level" and not isinstance(value, int):
        raise ValueError(f"condition {text!r}: escalation_level is compared with a whole number")
    elif field == "acknowledged" and not isinstance(value, bool):
        raise ValueError(f"condition {text!r}: acknowledged is compared with true or false")
    elif field == "status" and value not in STATUSES:
        raise ValueError(f"condition {text!r}: status is one of {', '.join(STATUSES)}")
    elif field in ("severity", "service") and not isinstance(value, str):
        raise ValueError(f"condition {text!r}: {field} is compared with quoted text")
    return Condition(field, op, value)


def all_hold(conditions: list[str], facts: IncidentFacts) -> bool:
    return all(parse_condition(c).holds(facts) for c in conditions)


def first_time_all_hold(conditions: list[str], facts: IncidentFacts, opened_at: datetime) -> datetime | None:
    """The earliest moment from now on at which every condition holds, if the other facts stay as they are.

    Only `duration` moves by itself; everything else changes through an event, which re-plans anyway.
    None means "not by the passage of time alone".
    """
    parsed = [parse_condition(c) for c in conditions]
    if not all(c.holds(facts) for c in parsed if c.field != "duration"):
        return None
    start = opened_at + facts.duration
    earliest = start
    for c in parsed:
        if c.field != "duration" or c.holds(facts):
            continue
        assert isinstance(c.value, timedelta)
        if c.op in (">", ">="):
            earliest = max(earliest, opened_at + c.value)
        else:  # "<" or "<=" that no longer holds can never hold again
            return None
    # An upper bound that holds now may be gone by then ("duration < '20 minutes'" with "> '30 minutes'").
    then = replace(facts, duration=earliest - opened_at)
    return earliest if all(c.holds(then) for c in parsed) else None
