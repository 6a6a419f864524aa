"""The response's gaps and strengths, computed from the incident's record for "What went well / poorly". Pure.

- how long after the incident began the first page reached someone (the first delivery after the first
  page): within `PAGE_TARGET` went well, later went poorly;
- how far up the on-call chain paging went before anyone answered (level 2 and up went poorly);
- a runbook that verified the fix ("mitigated: <runbook> verified the fix") went well.

Each line cites the incident evidence of the entry it rests on ("[incident-4]"), when that entry was kept as
evidence; the instant the incident began is its opening (the first alert's, once the record holds it).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from tocsin.durations import format_elapsed
from tocsin.incident.contracts import TimelineEntry
from tocsin.postmortem.contracts import ReportRequest
from tocsin.postmortem.timeline import as_utc

PAGE_TARGET = timedelta(minutes=1)
Dated = tuple[datetime, str]


def cite(request: ReportRequest, entry: TimelineEntry) -> str:
    """' [incident-4]': the incident evidence made from this entry (same instant, same kind), else ''."""
    at = as_utc(entry.at)
    for result in request.sources:
        for item in result.evidence:
            if item.source == "incident" and item.kind == entry.kind and item.at and as_utc(item.at) == at:
                return f" [{item.id}]"
    return ""


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
    began = incident.opened_at
    first = _first_page(incident.timeline)
    if first is not None:
        page, delivered = first
        if delivered is None:
            poorly.append((page.at, f"The first page was never delivered.{cite(request, page)}"))
        else:
            took = as_utc(delivered.at) - as_utc(began)
            line = f"The first page reached someone {format_elapsed(took)} after the incident opened"
            if took <= PAGE_TARGET:
                well.append((delivered.at, f"{line}.{cite(request, delivered)}"))
            else:
                cites = cite(request, page) + cite(request, delivered)
                poorly.append((delivered.at, f"{line}, more than {format_elapsed(PAGE_TARGET)}.{cites}"))
    levels = [e for e in incident.timeline if e.kind == "page" and e.text.startswith("level ")]
    reached = incident.escalation.step + 1
    if reached >= 2:
        # Dated and cited by that level's page when the record still holds it.
        page_of = [e for e in levels if e.text.startswith(f"level {reached}:")]
        at = page_of[0].at if page_of else (incident.acknowledged_at or incident.resolved_at or began)
        answered = "before anyone acknowledged" if incident.acknowledged_at else "and nobody acknowledged"
        line = f"Paging reached level {reached} of the on-call chain {answered}."
        poorly.append((at, line + (cite(request, page_of[0]) if page_of else "")))
    for entry in incident.timeline:
        if entry.kind == "mitigated" and entry.text.endswith("verified the fix"):
            runbook = entry.text.removeprefix("mitigated: ").removesuffix(" verified the fix")
            well.append((entry.at, f"Runbook {runbook} verified the fix.{cite(request, entry)}"))
    return well, poorly
