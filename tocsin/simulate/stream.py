"""The alerts file `tocsin simulate` replays: JSON lines, each a generic alert (the receiver's `POST
/api/v1/alerts` schema) plus `at`, an RFC 3339 time or an offset such as "+90s" from the stream's start. Pure.

Each line is validated as the receiver validates a payload (the same schema, then the same translation to a
NormalizedAlert), so an alert that would be refused at the door is refused here, with its line number, before
anything runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import pydantic_core
from pydantic import BeforeValidator, ValidationError

from tocsin.durations import parse_duration
from tocsin.intake.contracts import NormalizedAlert
from tocsin.intake.normalize import normalize
from tocsin.intake.plan import plan_payload
from tocsin.intake.sources import GenericAlert, describe_errors
from tocsin.policy.schema import Policy


class StreamError(ValueError):
    """A line that cannot be replayed: one message naming the file and line (the CLI exits 2 on it)."""


def _when(value: object) -> datetime | timedelta:
    if not isinstance(value, str):
        raise ValueError('expected a string: an RFC 3339 time or an offset such as "+90s"')
    text = value.strip()
    if text.startswith("+"):
        # parse_duration's own message says which units it knows.
        return parse_duration(text[1:])
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f'{value!r} is neither an RFC 3339 time nor an offset such as "+90s"') from None
    if when.tzinfo is None:
        # A time without an offset is a different instant on every machine.
        raise ValueError(f"{value!r} has no UTC offset (write Z or +01:00)")
    return when


At = Annotated[datetime | timedelta, BeforeValidator(_when)]


class StreamLine(GenericAlert):
    """One line: the generic alert, strictly as the receiver takes it (unknown keys refused), plus `at`."""

    at: At


@dataclass(frozen=True)
class TimedAlert:
    line: int  # 1-based, for messages
    offset: timedelta  # from the stream's start
    alert: NormalizedAlert


@dataclass(frozen=True)
class Stream:
    alerts: list[TimedAlert]  # in replay order (by offset, then by line)
    origin: datetime | None  # the earliest RFC 3339 time, when the file uses them


def _line(name: str, number: int, text: str) -> tuple[datetime | timedelta, NormalizedAlert]:
    where = f"{name} line {number}"
    try:
        data: Any = pydantic_core.from_json(text, allow_inf_nan=False)
    except ValueError as err:
        raise StreamError(f"{where}: invalid JSON: {err}") from None
    if not isinstance(data, dict):
        raise StreamError(f'{where}: expected a JSON object (a generic alert plus "at")')
    if "at" not in data:
        raise StreamError(f'{where}: at: Field required (an RFC 3339 time or an offset such as "+90s")')
    try:
        parsed = StreamLine.model_validate(data)
        # The receiver's own path for a generic alert, `at` aside: the alert it would have made.
        alert = normalize("generic", {k: v for k, v in data.items() if k != "at"}).alerts[0]
    except ValidationError as err:
        # "Value error, " is pydantic's wrapping of our own message: the message alone reads better.
        raise StreamError(f"{where}: {describe_errors(err, limit=1)[0].replace('Value error, ', '', 1)}") from None
    return parsed.at, alert


def parse_stream(text: str, name: str = "alerts") -> Stream:
    """Every line, or StreamError for the first bad one. Blank lines are skipped; the lines need not be in
    time order (they are replayed in it), but one file uses offsets or RFC 3339 times, not both: an offset
    beside absolute times would have no agreed start."""
    parsed: list[tuple[int, datetime | timedelta, NormalizedAlert]] = []
    kind: type | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        at, alert = _line(name, number, raw)
        this = datetime if isinstance(at, datetime) else timedelta
        if kind is not None and this is not kind:
            raise StreamError(f"{name} line {number}: at: mixes offsets and RFC 3339 times; use one kind per file")
        kind = this
        parsed.append((number, at, alert))
    if not parsed:
        raise StreamError(f"{name}: no alerts (expected one JSON object per line)")
    times = [at for _, at, _ in parsed if isinstance(at, datetime)]
    origin = min(times) if times else None
    timed = [TimedAlert(number, _offset(at, origin), alert) for number, at, alert in parsed]
    return Stream(alerts=sorted(timed, key=lambda t: (t.offset, t.line)), origin=origin)


def _offset(at: datetime | timedelta, origin: datetime | None) -> timedelta:
    if isinstance(at, timedelta):
        return at
    assert origin is not None  # set whenever the file holds a time
    return at - origin


def payloads(stream: Stream) -> list[tuple[timedelta, list[TimedAlert]]]:
    """Alerts due at the same moment go in as one payload, as a sender's batch does."""
    groups: list[tuple[timedelta, list[TimedAlert]]] = []
    for timed in stream.alerts:
        if groups and groups[-1][0] == timed.offset:
            groups[-1][1].append(timed)
        else:
            groups.append((timed.offset, [timed]))
    return groups


def check_plannable(stream: Stream, policy: Policy, name: str = "alerts") -> None:
    """Each line triaged alone under `policy`, as intake plans a payload: a line the policy cannot place (a
    template that fails on its labels, say) is reported with its number instead of refusing a payload later."""
    for timed in stream.alerts:
        refused = plan_payload(policy, [timed.alert], datetime.now(UTC)).refused
        if refused:
            raise StreamError(f"{name} line {timed.line}: {refused[0].reason}")
