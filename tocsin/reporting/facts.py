"""One incident's figures, read from its own record.

The clock starts at the first alert (`IncidentState.clock_start`), as the post-mortem's impact does
(tocsin.postmortem.impact): MTTA = acknowledged - clock start, MTTR = resolved - clock start, never negative.
Pages are the deliveries `tocsin why` attributes to a page or an ack-timeout re-page and that the provider
took (tocsin.incident.why reads the timeline; a failed delivery reached nobody and is not a page).
"""

from __future__ import annotations

from datetime import UTC, datetime

from tocsin.incident.contracts import IncidentState
from tocsin.incident.why import decisions
from tocsin.policy.schema import Policy
from tocsin.reporting.hours import out_of_hours
from tocsin.reporting.model import IncidentFacts, PageFact

PAGE_KINDS = ("page", "ack_timeout")


def utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def seconds_since(start: datetime, at: datetime | None) -> float | None:
    if at is None:
        return None
    return max((utc(at) - utc(start)).total_seconds(), 0.0)


def pages_of(state: IncidentState, policy: Policy) -> list[PageFact]:
    people = policy.roster.people
    pages = []
    for row in decisions(state, policy):
        if row.kind not in PAGE_KINDS or not row.outcome.startswith("delivered"):
            continue
        person = people.get(row.who)
        timezone = person.timezone if person is not None else "UTC"
        pages.append(
            PageFact(
                person=row.who,
                at=utc(row.at),
                level=row.level,
                timezone=timezone,
                out_of_hours=out_of_hours(row.at, timezone),
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
