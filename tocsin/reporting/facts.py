"""One incident's figures, read from its own record.

The clock starts at the first alert (`IncidentState.clock_start`), as the post-mortem's impact does
(tocsin.postmortem.impact): MTTA = acknowledged - clock start, MTTR = resolved - clock start, never negative.

A page is a notification that interrupts a person: a delivery on a paging channel (PAGING_CHANNELS) that the
provider took. Whatever sent it counts (the escalation chain, an ack-timeout re-page, an automatic action such
as paging the whole emergency team, management escalation by phone): each woke someone. A failed delivery
reached nobody; a follow-up that updates a page already sent (a PagerDuty incident acknowledged) is not a new
one. The timeline names the address; the roster says whose it is and their timezone.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from tocsin.incident.contracts import IncidentState
from tocsin.policy.schema import Policy
from tocsin.reporting.hours import out_of_hours
from tocsin.reporting.model import IncidentFacts, PageFact
from tocsin.roster import people_by_address

PAGING_CHANNELS = ("pagerduty", "phone", "sms")
# As workflows/incident/deliveries.py and escalation.py record them.
_DELIVERED = re.compile(r"^(\S+) → (.+?): ")
_LEVEL = re.compile(r"^level (\d+): ")


def utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def seconds_since(start: datetime, at: datetime | None) -> float | None:
    if at is None:
        return None
    return max((utc(at) - utc(start)).total_seconds(), 0.0)


def pages_of(state: IncidentState, policy: Policy) -> list[PageFact]:
    book = people_by_address(policy.roster)
    people = policy.roster.people
    pages = []
    level = 0
    follow_up = False
    for entry in state.timeline:
        if entry.kind != "delivered":
            if entry.kind == "page" and (found := _LEVEL.match(entry.text)):
                level = int(found.group(1))
            # A sync entry comes before the deliveries it causes; anything else ends that run.
            follow_up = entry.kind == "sync" or (follow_up and entry.kind == "delivery_failed")
            continue
        if entry.step is not None:
            # Deliveries recorded with their step say it themselves: a sync's follow-up is no new page.
            follow_up = entry.step.startswith("sync/")
        delivered = _DELIVERED.match(entry.text)
        if follow_up or delivered is None or delivered.group(1) not in PAGING_CHANNELS:
            continue
        who = book.get(delivered.group(2), delivered.group(2))
        person = people.get(who)
        timezone = person.timezone if person else "UTC"
        pages.append(
            PageFact(
                person=who,
                at=utc(entry.at),
                level=level,
                timezone=timezone,
                out_of_hours=out_of_hours(entry.at, timezone, person.working_hours if person else None),
            )
        )
    return pages


def incident_facts(state: IncidentState, policy: Policy) -> IncidentFacts:
    start = utc(state.clock_start)
    pages = pages_of(state, policy)
    # The state's level is where the chain stands; the pages say how far it went (a re-plan can lower it).
    depth = max([state.escalation_level, *(p.level for p in pages)])
    return IncidentFacts(
        key=state.key,
        title=state.title,
        service=state.service,
        severity=state.severity,
        status=state.status,
        clock_start=start,
        acknowledged_at=utc(state.acknowledged_at) if state.acknowledged_at else None,
        resolved_at=utc(state.resolved_at) if state.resolved_at else None,
        mtta_seconds=seconds_since(start, state.acknowledged_at),
        mttr_seconds=seconds_since(start, state.resolved_at),
        escalation_depth=depth,
        pages=pages,
    )
