"""The response's gaps and strengths, computed from the incident's record for "What went well / poorly". Pure.

- how long after the first alert (the opening, for an incident recorded before it was kept) the first page
  reached someone (`first_paged_at`, else the first delivery after the first page): within `PAGE_TARGET`
  went well, later went poorly;
- how far up the on-call chain paging went before anyone answered (level 2 and up went poorly);
- a runbook that verified the fix ("mitigated: <runbook> verified the fix") went well.

Each line cites the incident evidence of the entries it rests on, those kept as evidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from tocsin.durations import format_elapsed
from tocsin.incident.contracts import TimelineEntry
from tocsin.postmortem.contracts import ReportRequest
from tocsin.postmortem.timeline import as_utc

# Paging within half a minute of the first alert is what an alerting pipeline can do; longer is a wait (a busy
# worker, a slow triage) that someone with a failing service felt.
PAGE_TARGET = timedelta(seconds=30)


@dataclass(frozen=True)
class Line:
    """One bullet and the evidence it rests on (printed as citations, not as part of the escaped text)."""

    text: str
    evidence: tuple[str, ...] = ()

    def __str__(self) -> str:  # a user template that prints `{{ line }}` still shows the citations
        return self.text + "".join(f" [{i}]" for i in self.evidence)


Dated = tuple[datetime, Line]


def cite(request: ReportRequest, *entries: TimelineEntry | None) -> tuple[str, ...]:
    """The incident evidence made from these entries (same instant, same kind), those that were kept."""
    ids: list[str] = []
    for entry in entries:
        if entry is None:
            continue
        at = as_utc(entry.at)
        for result in request.sources:
            for item in result.evidence:
                if item.source == "incident" and item.kind == entry.kind and item.at and as_utc(item.at) == at:
                    ids.append(item.id)
    return tuple(dict.fromkeys(ids))


def _first_page(timeline: list[TimelineEntry]) -> tuple[TimelineEntry, TimelineEntry | None] | None:
    """The first page the chain sent, and the first delivery after it (None when none was delivered)."""
    pages = [e for e in timeline if e.kind == "page" and "nobody to page" not in e.text]
    if not pages:
        return None
    page = pages[0]
    delivered = [e for e in timeline if e.kind == "delivered" and as_utc(e.at) >= as_utc(page.at)]
    return page, delivered[0] if delivered else None


def response_gaps(request: ReportRequest) -> tuple[list[Dated], list[Dated]]:
    """(went well, went poorly), each a list of (when, line)."""
    incident = request.incident
    well: list[Dated] = []
    poorly: list[Dated] = []
    began = incident.clock_start
    since = "the first alert" if incident.first_alert_at else "the incident opened"
    first = _first_page(incident.timeline)
    if first is not None:
        page, delivered = first
        # The record's own instant when it has one (the provider took the page); else the first delivery.
        paged = incident.first_paged_at or (delivered.at if delivered else None)
        if paged is None:
            poorly.append((page.at, Line("The first page was never delivered.", cite(request, page))))
        else:
            took = as_utc(paged) - as_utc(began)
            line = f"The first page reached someone {format_elapsed(took)} after {since}"
            if took <= PAGE_TARGET:
                well.append((paged, Line(f"{line}.", cite(request, delivered))))
            else:
                late = f"{line}, more than {format_elapsed(PAGE_TARGET)}."
                poorly.append((paged, Line(late, cite(request, page, delivered))))
    levels = [e for e in incident.timeline if e.kind == "page" and e.text.startswith("level ")]
    reached = incident.escalation.step + 1
    if reached >= 2:
        # Dated and cited by that level's page when the record still holds it.
        page_of = [e for e in levels if e.text.startswith(f"level {reached}:")]
        at = page_of[0].at if page_of else (incident.acknowledged_at or incident.resolved_at or began)
        answered = "before anyone acknowledged" if incident.acknowledged_at else "and nobody acknowledged"
        line = f"Paging reached level {reached} of the on-call chain {answered}."
        poorly.append((at, Line(line, cite(request, *page_of[:1]))))
    for entry in incident.timeline:
        if entry.kind == "mitigated" and entry.text.endswith("verified the fix"):
            runbook = entry.text.removeprefix("mitigated: ").removesuffix(" verified the fix")
            well.append((entry.at, Line(f"Runbook {runbook} verified the fix.", cite(request, entry))))
    return well, poorly
