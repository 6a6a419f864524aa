"""The policy's `roster:` section: people, teams, rotations and overrides, as the policy file writes them.

Only the shape and the cross-references live here; tocsin.roster resolves a target to people at an instant
(the arithmetic of shifts). Every model forbids unknown keys, like the rest of the policy.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime, time
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, model_validator

from tocsin.policy.fields import Strict as _Strict
from tocsin.policy.fields import Weekday

# --- the on-call roster ----------------------------------------------------------------------------------
# People, teams and rotations that escalation targets name; tocsin.roster resolves a target to people at an
# instant. Only the shape and the cross-references live here; the arithmetic of shifts is in tocsin.roster.

ROSTER_NAME = r"^[A-Za-z0-9][A-Za-z0-9_-]*$"
RosterName = Annotated[str, Field(pattern=ROSTER_NAME)]
_CHANNEL = re.compile(r"^#[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_PHONE_SEPARATORS = re.compile(r"[\s().-]")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,20}$")
_PAGERDUTY_USER = re.compile(r"^[A-Z0-9]{5,20}$")


def _timezone(value: str) -> str:
    """An IANA name that this machine's zone database knows ('Europe/Berlin', 'UTC')."""
    problem = f"unknown timezone {value!r}: use an IANA name such as 'Europe/Berlin', 'America/New_York' or 'UTC'"
    if value == "localtime":  # a file some systems have, not a zone: it means whatever the machine says
        raise ValueError(problem)
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(problem) from None
    return value


def _phone(value: object) -> object:
    if isinstance(value, int) and not isinstance(value, bool):
        # YAML reads +4915112345678 as the integer 4915112345678: the '+' is gone before we see it.
        raise ValueError(f"quote the phone number: YAML reads it as the number {value} (write e.g. '+4915112345678')")
    if not isinstance(value, str):
        return value  # pydantic says "a valid string"
    number = _PHONE_SEPARATORS.sub("", value)
    if not _E164.match(number):
        raise ValueError(
            f"{value!r} is not an E.164 phone number: '+', country code and number, 7 to 15 digits "
            "(e.g. '+4915112345678')"
        )
    return number


def _matching(pattern: re.Pattern[str], example: str) -> AfterValidator:
    def check(value: str) -> str:
        if not pattern.match(value):
            raise ValueError(f"{value!r} does not look like {example}")
        return value

    return AfterValidator(check)


def _time_of_day(value: object) -> object:
    if isinstance(value, int) and not isinstance(value, bool):
        # YAML 1.1 reads an unquoted 9:30 as 570 (base 60), and pydantic would take a number as seconds.
        raise ValueError("write the time of day in quotes, e.g. '09:00' (YAML reads an unquoted 9:30 as a number)")
    return value


def _naive_time(value: time) -> time:
    if value.tzinfo is not None:
        raise ValueError("a handoff time has no offset: the rotation's timezone says where it is")
    return value


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{value.isoformat()} has no UTC offset: write e.g. 2025-03-03T09:00:00+01:00")
    return value


TimeZoneName = Annotated[str, AfterValidator(_timezone)]
PhoneNumber = Annotated[str, BeforeValidator(_phone)]
TimeOfDay = Annotated[time, BeforeValidator(_time_of_day), AfterValidator(_naive_time)]
AwareTime = Annotated[datetime, AfterValidator(_aware)]


_WORKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri")


class WorkingHours(_Strict):
    """A person's working week on their own clock (their `timezone`): a page outside it is out of hours."""

    days: list[Weekday] = Field(default_factory=lambda: list(_WORKDAYS), min_length=1)
    start: TimeOfDay = time(9, 0)
    end: TimeOfDay = time(18, 0)

    @model_validator(mode="after")
    def _order(self) -> WorkingHours:
        if self.start >= self.end:
            raise ValueError(f"start {self.start:%H:%M} must be before end {self.end:%H:%M}")
        return self


class Person(_Strict):
    """Someone who can be paged. The roster's key is how policies and overrides name them."""

    name: str | None = Field(default=None, description="display name (default: the roster key)")
    timezone: TimeZoneName = Field(description="where they live, so a page can say what time it is for them")
    email: Annotated[str, _matching(_EMAIL, "an email address")] | None = None
    phone: PhoneNumber | None = Field(default=None, description="E.164, e.g. '+4915112345678' (separators dropped)")
    slack: Annotated[str, _matching(_SLACK_USER, "a Slack member id such as 'U024BE7LH'")] | None = None
    pagerduty: Annotated[str, _matching(_PAGERDUTY_USER, "a PagerDuty user id such as 'PXPGF42'")] | None = None
    # When a page is "out of hours" for them (`tocsin report`); default Monday to Friday, 09:00 to 18:00.
    working_hours: WorkingHours | None = None

    @model_validator(mode="after")
    def _reachable(self) -> Person:
        if not (self.email or self.phone or self.slack or self.pagerduty):
            raise ValueError("a person needs at least one contact method: email, phone, slack or pagerduty")
        return self


class Team(_Strict):
    members: list[RosterName] = Field(default_factory=list)
    channel: Annotated[str, _matching(_CHANNEL, "a channel such as '#sre'")] | None = None


class Rotation(_Strict):
    """Members take turns, one shift each, in order; shift 0 starts on `start` at `handoff` with members[0].

    Handoffs happen at `handoff` wall-clock time in `timezone`, so they follow daylight saving time. A
    handoff time that a spring-forward skips happens when the clocks jump (02:30 becomes 03:30); one that
    a fall-back repeats happens the first time round.
    """

    type: Literal["daily", "weekly"]
    handoff: TimeOfDay = time(9, 0)
    timezone: TimeZoneName
    start: date = Field(description="the date of the first handoff (for weekly, also the weekday of each)")
    members: list[RosterName] = Field(default_factory=list, description="in turn order; may be empty")

    @property
    def period_days(self) -> int:
        return 1 if self.type == "daily" else 7


class RosterOverride(_Strict):
    """`by` is on call instead of `covering` (or instead of whoever is scheduled, without it), from..until.

    When several overrides hold at once, the one that starts latest wins; on a tie, the one written last
    (an overrides file comes after the policy's own list).
    """

    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )

    rotation: RosterName
    by: RosterName
    covering: RosterName | None = None
    start: AwareTime = Field(alias="from")
    end: AwareTime = Field(alias="until")
    reason: str = ""

    @model_validator(mode="after")
    def _sane(self) -> RosterOverride:
        if self.end <= self.start:
            raise ValueError(f"'until' ({self.end.isoformat()}) must be after 'from' ({self.start.isoformat()})")
        if self.covering == self.by:
            raise ValueError(f"{self.by} cannot cover themselves")
        return self


class Roster(_Strict):
    people: dict[RosterName, Person] = Field(default_factory=dict)
    teams: dict[RosterName, Team] = Field(default_factory=dict)
    rotations: dict[RosterName, Rotation] = Field(default_factory=dict)
    overrides: list[RosterOverride] = Field(default_factory=list)

    def is_empty(self) -> bool:
        return not (self.people or self.teams or self.rotations)

    def target_kind(self, target: str) -> Literal["person", "team", "rotation", "channel"] | None:
        """What an escalation target names: '#incidents', 'primary_oncall', or with a kind, 'team:sre'."""
        if _CHANNEL.match(target):
            return "channel"
        prefix, sep, name = target.partition(":")
        if sep:
            kind = self.kind_of(name)
            return kind if kind == prefix else None
        return self.kind_of(target)

    def kind_of(self, name: str) -> Literal["person", "team", "rotation"] | None:
        if name in self.people:
            return "person"
        if name in self.teams:
            return "team"
        return "rotation" if name in self.rotations else None

    def override_problems(self, override: RosterOverride) -> list[tuple[str, str]]:
        """(field, problem) for each name the override uses that this roster does not have."""
        found: list[tuple[str, str]] = []
        rotation = self.rotations.get(override.rotation)
        if rotation is None:
            found.append(("rotation", f"unknown rotation {override.rotation!r}{known_hint(self.rotations)}"))
        if override.by not in self.people:
            found.append(("by", f"unknown person {override.by!r}{known_hint(self.people)}"))
        if override.covering is not None:
            if override.covering not in self.people:
                found.append(("covering", f"unknown person {override.covering!r}{known_hint(self.people)}"))
            elif rotation is not None and override.covering not in rotation.members:
                # It could never apply: say so now, not when nobody turns up.
                found.append(("covering", f"{override.covering} is not a member of rotation {override.rotation}"))
        return found

    def problems(self) -> list[tuple[str, str]]:
        """(dotted path under `roster`, problem) for every reference that does not resolve."""
        found: list[tuple[str, str]] = []
        for kind, names in (("team", self.teams), ("rotation", self.rotations)):
            for name in names:
                other = "person" if name in self.people else "team" if kind == "rotation" and name in self.teams else ""
                if other:
                    found.append((f"{kind}s.{name}", f"{name!r} is also a {other}: a target name must mean one thing"))
        for where, members in [
            *((f"teams.{n}", t.members) for n, t in self.teams.items()),
            *((f"rotations.{n}", r.members) for n, r in self.rotations.items()),
        ]:
            for i, member in enumerate(members):
                if member not in self.people:
                    found.append((f"{where}.members.{i}", f"unknown person {member!r}{known_hint(self.people)}"))
        for i, override in enumerate(self.overrides):
            found.extend((f"overrides.{i}.{field}", problem) for field, problem in self.override_problems(override))
        return found


def known_hint(names: Iterable[str]) -> str:
    listed = ", ".join(names)
    return f" (known: {listed})" if listed else " (there are none)"
