"""The report from the incidents' figures: pure, so every number can be checked by hand."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from tocsin.policy.schema import Policy
from tocsin.reporting import hours, stats
from tocsin.reporting.facts import utc
from tocsin.reporting.model import (
    DayCount,
    Definitions,
    DepthCount,
    IncidentFacts,
    PersonRow,
    Report,
    ResponseRow,
    Stat,
)

ALL = "*"
DEFINITIONS = Definitions(
    clock_start="the incident's first alert (when the receiver, the detector or the CLI first heard of it)",
    mtta="acknowledged - clock start, over the incidents that were acknowledged",
    mttr="resolved - clock start, over the incidents that were resolved",
    median=stats.MEDIAN_METHOD,
    p90=stats.P90_METHOD,
    out_of_hours=hours.RULE,
    pages=(
        "notifications on a paging channel (PagerDuty, phone call, SMS) that the provider took, per roster person: "
        "the escalation chain's, ack-timeout re-pages, automatic actions' and management escalation's alike; "
        "not failed deliveries, not follow-up updates of a page already sent"
    ),
    escalation_depth="the highest escalation level paged; 0 when nobody was paged",
    incidents_per_day="incidents by the UTC day of their clock start",
)


def stat(values: Sequence[float]) -> Stat:
    return Stat(count=len(values), median_seconds=stats.median(values), p90_seconds=stats.p90(values))


def response_row(service: str, severity: str, incidents: Sequence[IncidentFacts]) -> ResponseRow:
    return ResponseRow(
        service=service,
        severity=severity,
        incidents=len(incidents),
        mtta=stat([i.mtta_seconds for i in incidents if i.mtta_seconds is not None]),
        mttr=stat([i.mttr_seconds for i in incidents if i.mttr_seconds is not None]),
    )


def _grouped(incidents: Sequence[IncidentFacts], key: Callable[[IncidentFacts], str]) -> dict[str, list[IncidentFacts]]:
    groups: dict[str, list[IncidentFacts]] = {}
    for incident in incidents:
        groups.setdefault(key(incident), []).append(incident)
    return groups


def by_service_severity(incidents: Sequence[IncidentFacts]) -> list[ResponseRow]:
    groups = _grouped(incidents, lambda i: f"{i.service}\0{i.severity}")
    rows = []
    for group, members in sorted(groups.items()):
        service, _, severity = group.partition("\0")
        rows.append(response_row(service, severity, members))
    return rows


def people(incidents: Sequence[IncidentFacts], policy: Policy) -> list[PersonRow]:
    """Everyone paged in the window, most paged first."""
    total: Counter[str] = Counter()
    late: Counter[str] = Counter()
    zones: dict[str, str] = {}
    for page in (p for i in incidents for p in i.pages):
        total[page.person] += 1
        late[page.person] += page.out_of_hours
        zones[page.person] = page.timezone
    roster = policy.roster.people
    return [
        PersonRow(
            person=who,
            name=(roster[who].name or who) if who in roster else who,
            timezone=zones[who],
            pages=count,
            out_of_hours_pages=late[who],
        )
        for who, count in sorted(total.items(), key=lambda item: (-item[1], item[0]))
    ]


def per_day(incidents: Sequence[IncidentFacts], since: datetime, until: datetime) -> list[DayCount]:
    """Every UTC day of the window, quiet days included: a chart with gaps left out would mislead."""
    counts = Counter(i.clock_start.date() for i in incidents)
    first, last = utc(since).date(), utc(until).date()
    days = []
    day = first
    while day <= last:
        days.append(DayCount(day=day, incidents=counts.get(day, 0)))
        day += timedelta(days=1)
    return days


def depths(incidents: Sequence[IncidentFacts]) -> list[DepthCount]:
    """Incidents by how far their chain escalated, every level from 0 to the deepest."""
    counts = Counter(i.escalation_depth for i in incidents)
    deepest = max(counts, default=0)
    return [DepthCount(depth=d, incidents=counts.get(d, 0)) for d in range(deepest + 1)]


def build_report(
    incidents: Sequence[IncidentFacts],
    policy: Policy,
    *,
    since: datetime,
    until: datetime,
    generated_at: datetime,
    limit: int,
    truncated: bool,
    skipped: Sequence[str] = (),
) -> Report:
    # Only incidents whose clock started in the window: a long incident's later run can start inside it.
    kept = sorted(
        (i for i in incidents if utc(since) <= i.clock_start <= utc(until)), key=lambda i: (i.clock_start, i.key)
    )
    return Report(
        generated_at=utc(generated_at),
        since=utc(since),
        until=utc(until),
        limit=limit,
        truncated=truncated,
        skipped=list(skipped),
        definitions=DEFINITIONS,
        overall=response_row(ALL, ALL, kept),
        by_service_severity=by_service_severity(kept),
        people=people(kept, policy),
        per_day=per_day(kept, since, until),
        escalation_depth=depths(kept),
        incidents=kept,
    )
