"""What a simulation paged, read back from its outbox, and how two runs differ. Pure.

A simulation sends every delivery to an outbox (nothing reaches a vendor), and an outbox line carries the
delivery's idempotency key, whose step says whether it was a page: `<workflow id>/<run>/page/<level>/<attempt>`,
with `/<who>` when the level reached several people (workflows/incident/escalation.py builds it, and
activities/delivery.py's `is_page` reads it the same way). Stakeholder notices, war rooms and status pages
are deliveries too, but they wake nobody: they are not listed.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel

from tocsin.policy.schema import Policy

# tocsin.storm.consolidation names a storm incident after the moment it formed, which differs between two
# runs that start at different times: across runs a storm is known by its offset instead.
_STORM_KEY = re.compile(r"^storm-\d{8}-\d{6}$")
_PAGE_ID = re.compile(r"^incident-(?P<key>.+)/(?P<run>[^/]+)/page/(?P<level>\d+)/(?P<attempt>\d+)(?:/(?P<who>[^/]+))?$")


class Page(BaseModel):
    """One page: when (from the stream's start), which level of the chain, who, on which channel."""

    offset: timedelta
    level: int  # 1-based, as `tocsin why` and the timeline count them
    person: str
    channel: str
    address: str

    def row(self) -> tuple[timedelta, int, str, str]:
        return (self.offset, self.level, self.person, self.channel)


class IncidentPages(BaseModel):
    key: str
    # A key that resolved and fired again within the stream opened another incident: 2, 3, ...
    occurrence: int = 1
    title: str
    service: str
    severity: str
    opened: timedelta
    pages: list[Page]


class Run(BaseModel):
    """One policy's simulation."""

    policy: str
    incidents: list[IncidentPages]


def format_offset(value: timedelta) -> str:
    """+0s, +90s, +5m, +1h30m: exact, and as short as the value allows (a page is due on whole seconds)."""
    total = int(value.total_seconds())
    sign = "-" if total < 0 else "+"
    hours, rest = divmod(abs(total), 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{n}{unit}" for n, unit in ((hours, "h"), (minutes, "m"), (seconds, "s")) if n]
    return sign + ("".join(parts) or "0s")


def _people_by_address(policy: Policy) -> dict[str, str]:
    """Deliveries name an address (a phone number, a PagerDuty id); people read roster names."""
    book: dict[str, str] = {}
    for pid, person in policy.roster.people.items():
        for address in (person.email, person.phone, person.slack, person.pagerduty):
            if address:
                book.setdefault(address, pid)
    return book


def pages_by_incident(
    records: list[dict[str, Any]], policy: Policy, start: datetime
) -> dict[tuple[str, str], list[Page]]:
    """The outbox's pages per incident, in time order (then level, person). An incident is its key and the
    first 8 characters of its first run id, as in the delivery's key: a key that resolves and fires again
    opens a second incident under the same key."""
    book = _people_by_address(policy)
    found: dict[tuple[str, str], list[Page]] = {}
    for record in records:
        match = _PAGE_ID.match(str(record.get("id", "")))
        if match is None:
            continue
        address = str(record["target"])
        # Whole seconds, as printed: a few milliseconds of the worker's own time are not a difference.
        elapsed = datetime.fromisoformat(record["at"]) - start
        page = Page(
            offset=timedelta(seconds=int(elapsed.total_seconds())),
            level=int(match["level"]) + 1,
            person=match["who"] or book.get(address, address),
            channel=str(record["channel"]),
            address=address,
        )
        found.setdefault((match["key"], match["run"]), []).append(page)
    for pages in found.values():
        pages.sort(key=lambda p: (p.offset, p.level, p.person, p.channel))
    return found


def comparable_key(incident: IncidentPages) -> str:
    """The name that finds the same incident in another run: its key, or for a storm, when it formed."""
    if _STORM_KEY.match(incident.key):
        return f"storm opened {format_offset(incident.opened)}"
    return incident.key if incident.occurrence == 1 else f"{incident.key} #{incident.occurrence}"


def differences(current: Run, candidate: Run) -> list[str]:
    """What changes for people, per incident, one line each: a page that comes at another time (the n-th page
    of a level to a person on a channel under both policies), or a page only one policy sends. Empty when
    both page the same people on the same channels at the same times."""
    before = {comparable_key(i): i for i in current.incidents}
    after = {comparable_key(i): i for i in candidate.incidents}
    lines: list[str] = []
    for key in [*before, *(k for k in after if k not in before)]:
        if key not in after:
            lines.append(f"{key}: opened only under the current policy (the candidate groups its alerts differently)")
        elif key not in before:
            lines.append(f"{key}: opened only under the candidate policy (it groups the alerts differently)")
        else:
            lines.extend(f"{key}: {change}" for change in _changes(before[key].pages, after[key].pages))
    return lines


def _by_recipient(pages: list[Page]) -> dict[tuple[int, str, str], list[timedelta]]:
    found: dict[tuple[int, str, str], list[timedelta]] = {}
    for page in pages:
        found.setdefault((page.level, page.person, page.channel), []).append(page.offset)
    return found


def _changes(old: list[Page], new: list[Page]) -> list[str]:
    # Paired by recipient and order, not by time: "the second level-1 page to dave" moving from +5m to +2m
    # is one change a person can read, where a time-keyed diff would show a page gone and another come.
    before, after = _by_recipient(old), _by_recipient(new)
    changes: list[tuple[timedelta, str]] = []
    for recipient in [*before, *(r for r in after if r not in before)]:
        level, person, channel = recipient
        what = f"level {level} {person} via {channel}"
        was, now = before.get(recipient, []), after.get(recipient, [])
        for n, (a, b) in enumerate(zip(was, now, strict=False), start=1):
            if a != b:
                changes.append((min(a, b), f"page {n} of {what}: {format_offset(a)} -> {format_offset(b)}"))
        for a in was[len(now) :]:
            changes.append((a, f"- {format_offset(a)} {what} (only under the current policy)"))
        for b in now[len(was) :]:
            changes.append((b, f"+ {format_offset(b)} {what} (only under the candidate policy)"))
    return [text for _, text in sorted(changes, key=lambda change: change[0])]
