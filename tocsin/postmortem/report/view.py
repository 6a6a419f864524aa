"""The post-mortem report's view-model, built from the ReportRequest: every value a string ready to print, the
same for the Markdown and the HTML template (tocsin.postmortem.report.render). Pure: no clock, no I/O, so the
same request renders the same bytes, which is what lets a retried publish see an identical file and skip it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from tocsin.durations import format_elapsed
from tocsin.postmortem.contracts import (
    ActionItem,
    Claim,
    Evidence,
    PublishedItem,
    ReportRequest,
    SourceName,
)
from tocsin.postmortem.impact import time_to_first_page
from tocsin.postmortem.report.gaps import Line
from tocsin.postmortem.report.sections import Fact, impact_facts, plural, summary, went_well_and_poorly, when
from tocsin.postmortem.timeline import StoryEvent, as_utc, story

SOURCES: tuple[SourceName, ...] = ("incident", "metrics", "logs", "changes", "pagerduty")
_SAFE_URL = re.compile(r"^https?://[A-Za-z0-9.\-]+(:\d+)?(/[A-Za-z0-9._~%!$&'*+,;=:@/?#-]*)?$")


@dataclass(frozen=True)
class Cited:
    text: str
    evidence: tuple[str, ...]


@dataclass(frozen=True)
class TimelineRow:
    at: str  # UTC, to the second
    source: str
    text: str
    evidence: str


@dataclass(frozen=True)
class ItemRow:
    title: str
    description: str
    owner: str
    priority: str
    due: str
    origin: str
    evidence: tuple[str, ...]
    issue: str  # "#12" once published, else "not filed yet"
    issue_number: int | None
    issue_url: str  # an http(s) URL, or ""


@dataclass(frozen=True)
class SourceRow:
    source: str
    status: str
    detail: str
    missing: bool
    artifact: str


@dataclass(frozen=True)
class EvidenceRow:
    id: str
    source: str
    at: str
    summary: str
    link: str
    href: str  # the link when it is an http(s) URL, else ""


@dataclass(frozen=True)
class ReportView:
    key: str
    title: str
    severity: str
    service: str
    opened: str
    resolved: str
    status: str  # "draft" or "approved by <name>"
    revision: int
    analyzer: str
    confidence: str
    summary: str
    impact: tuple[Fact, ...]
    timeline: tuple[TimelineRow, ...]  # the story: key moments, deliveries and syncs folded per burst
    full_timeline: tuple[TimelineRow, ...]  # every event, as merged
    primary_cause: Cited | None
    contributing: tuple[Cited, ...]
    went_well: tuple[Line, ...]  # each: text and the evidence it cites
    went_poorly: tuple[Line, ...]
    action_items: tuple[ItemRow, ...]
    lessons: tuple[Cited, ...]
    preventive: tuple[Cited, ...]
    sources: tuple[SourceRow, ...]
    missing: tuple[str, ...]  # "logs (failed: timeout)": evidence the analysis did not see
    evidence: tuple[EvidenceRow, ...]  # every evidence item a claim or an action item cites
    analysis_notes: tuple[str, ...]
    review_notes: tuple[str, ...]


def normalized_title(title: str) -> str:
    """What makes two action items the same item: their titles, case and whitespace aside."""
    return " ".join(title.split()).casefold()


def title_digest(title: str) -> str:
    return hashlib.sha256(normalized_title(title).encode()).hexdigest()[:16]


def safe_url(value: str) -> str:
    """`value` when it is a plain absolute http(s) URL (no spaces, quotes, brackets or pipes), else ""."""
    return value if _SAFE_URL.match(value) else ""


def build_view(request: ReportRequest, published: Sequence[PublishedItem] = ()) -> ReportView:
    """The report's content, every value a string ready to print. Pure: no clock, no I/O.

    `published` (the issues of a publication, matched to action items by title) fills the action items' issue
    column; ReportRequest itself carries no publication, so a draft lists them as "not filed yet"."""
    incident, analysis = request.incident, request.analysis
    evidence = {e.id: e for s in request.sources for e in s.evidence}
    by_title = {normalized_title(p.title): p for p in published}
    sources = _sources(request)
    missing = tuple(f"{row.source} ({row.status}: {row.detail})" for row in sources if row.missing)
    well, poorly = went_well_and_poorly(request, missing)
    claims = [
        *([analysis.primary_cause] if analysis.primary_cause else []),
        *analysis.contributing_factors,
        *analysis.preventive_measures,
        *analysis.lessons_learned,
    ]
    # Stable by time: merge_timeline's order (the opening first at its instant) survives.
    events = sorted(request.timeline, key=lambda t: as_utc(t.at))
    cited = list(
        dict.fromkeys([i for c in claims for i in c.evidence] + [i for a in request.action_items for i in a.evidence])
    )
    return ReportView(
        key=incident.key,
        title=incident.title,
        severity=incident.severity,
        service=incident.service,
        opened=when(incident.opened_at),
        resolved=when(incident.resolved_at) if incident.resolved_at else "not resolved",
        status=f"approved by {request.approved_by}" if request.approved_by else "draft",
        revision=request.revision,
        analyzer=analysis.analyzer,
        confidence=f"{round(analysis.confidence * 100)}%",
        summary=summary(request),
        impact=_with_clock(request, impact_facts(request)),
        timeline=tuple(
            TimelineRow(at=when(t.at, seconds=True, suffix=False), source=t.source, text=t.text, evidence=_ids(t))
            for t in story(events)
        ),
        full_timeline=tuple(
            TimelineRow(at=when(t.at, seconds=True, suffix=False), source=t.source, text=t.text, evidence=t.id)
            for t in events
        ),
        primary_cause=_cited(analysis.primary_cause) if analysis.primary_cause else None,
        contributing=tuple(_cited(c) for c in analysis.contributing_factors),
        went_well=tuple(well),
        went_poorly=tuple(poorly),
        action_items=tuple(_item(a, by_title.get(normalized_title(a.title))) for a in request.action_items),
        lessons=tuple(_cited(c) for c in analysis.lessons_learned),
        preventive=tuple(_cited(c) for c in analysis.preventive_measures),
        sources=sources,
        missing=missing,
        evidence=tuple(_evidence(i, evidence.get(i)) for i in cited),
        analysis_notes=tuple(analysis.notes),
        review_notes=tuple(request.review_notes),
    )


def _with_clock(request: ReportRequest, facts: tuple[Fact, ...]) -> tuple[Fact, ...]:
    """The response times start at the first alert: say when that was (if the workflow opened later) and how
    long the first page took, right after the duration, before the times to acknowledge, mitigate, resolve."""
    incident = request.incident
    first_page = time_to_first_page(incident)
    clock = [Fact("Time to first page", format_elapsed(first_page) if first_page is not None else "nobody paged")]
    if incident.opened_at - incident.clock_start >= timedelta(seconds=1):
        clock.insert(0, Fact("First alert", when(incident.clock_start, seconds=True)))
    at = next((i + 1 for i, fact in enumerate(facts) if fact.label == "Duration"), 0)
    return (*facts[:at], *clock, *facts[at:])


def _ids(event: StoryEvent) -> str:
    """A folded line's evidence: its first and last ids ("incident-4 … incident-9"), the rest in between."""
    ids = event.evidence
    return ids[0] if len(ids) == 1 else f"{ids[0]} … {ids[-1]}"


def _cited(claim: Claim) -> Cited:
    return Cited(text=" ".join(claim.text.split()), evidence=tuple(claim.evidence))


def _item(item: ActionItem, published: PublishedItem | None) -> ItemRow:
    number = published.issue_number if published else None
    return ItemRow(
        title=item.title,
        description=item.description,
        owner=item.owner,
        priority=item.priority,
        due=item.due.isoformat(),
        origin=item.origin,
        evidence=tuple(item.evidence),
        issue=f"#{number}" if number is not None else "not filed yet",
        issue_number=number,
        issue_url=safe_url(published.issue_url) if published and number is not None else "",
    )


def _evidence(evidence_id: str, found: Evidence | None) -> EvidenceRow:
    if found is None:
        return EvidenceRow(evidence_id, "", "", "not found in the evidence gathered", "", "")
    return EvidenceRow(
        id=found.id,
        source=found.source,
        at=when(found.at, seconds=True, suffix=False) if found.at else "",
        summary=found.summary,
        link=found.link,
        href=safe_url(found.link),
    )


def _sources(request: ReportRequest) -> tuple[SourceRow, ...]:
    rows = []
    seen = {s.source for s in request.sources}
    for result in request.sources:
        if result.status == "ok":
            detail = plural(len(result.evidence), "evidence item") + (
                f", {len(result.series)} series" if result.series else ""
            )
        else:
            detail = " ".join(result.reason.split()) or "no reason given"
        rows.append(
            SourceRow(
                source=result.source,
                status=result.status,
                detail=detail,
                missing=result.status != "ok",
                artifact=result.artifact.path if result.artifact else "",
            )
        )
    for name in SOURCES:
        if name not in seen:
            rows.append(SourceRow(name, "skipped", "not gathered", True, ""))
    return tuple(rows)
