"""Incident evidence: the incident's own timeline, one Evidence per entry ('incident-1'...). Pure: no I/O.

The timeline is the workflow's record (its history is the truth), so this source is never skipped or failed.
An incident with more entries than a SourceResult may carry keeps its first and its last, then the entries
that say most about the response (opened, acknowledged, escalated, mitigated, resolved, SLO breaches...)
before the chatter (pages sent, deliveries, syncs), earliest first within each rank.
"""

from __future__ import annotations

from tocsin.incident.contracts import TimelineEntry
from tocsin.postmortem.contracts import EVIDENCE_LIMIT, IncidentEvidenceRequest, SourceResult
from tocsin.postmortem.sources.results import Finding, number

# Timeline kinds (workflows/incident/core.py `record`) by how much they say about the response; unknown kinds
# rank between the second and the last group.
RANKS: dict[str, int] = {
    **dict.fromkeys(
        (
            "opened",
            "acknowledged",
            "escalated",
            "mitigated",
            "resolved",
            "severity_changed",
            "breach",
            "chain_exhausted",
        ),
        0,
    ),
    **dict.fromkeys(
        (
            "triaged",
            "management",
            "remediation",
            "runbook",
            "action",
            "note",
            "alert_firing",
            "alert_resolved",
            "delivery_failed",
            "postmortem",
        ),
        1,
    ),
    **dict.fromkeys(("page", "notify", "delivered", "sync"), 3),
}
UNKNOWN_RANK = 2


def summary_of(entry: TimelineEntry) -> str:
    return f"{entry.kind}: {entry.text}" + (f" (by {entry.by})" if entry.by else "")


def select(entries: list[TimelineEntry], limit: int = EVIDENCE_LIMIT) -> list[int]:
    """Indexes of the entries kept, in timeline order: all of them, or within `limit` the first, the last and
    the best-ranked others."""
    if len(entries) <= limit:
        return list(range(len(entries)))
    if limit < 2:
        return list(range(limit))
    last = len(entries) - 1
    middle = sorted(range(1, last), key=lambda i: (RANKS.get(entries[i].kind, UNKNOWN_RANK), i))
    return sorted([0, last, *middle[: limit - 2]])


def incident_evidence(request: IncidentEvidenceRequest, limit: int = EVIDENCE_LIMIT) -> SourceResult:
    timeline = request.incident.timeline
    kept = select(timeline, limit)
    findings = [Finding(timeline[i].at, summary_of(timeline[i])) for i in kept]
    reason = f"{len(timeline)} timeline entries, {len(kept)} kept as evidence" if len(kept) < len(timeline) else ""
    return SourceResult(source="incident", status="ok", reason=reason, evidence=number("incident", findings, limit))
