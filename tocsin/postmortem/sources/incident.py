"""Incident evidence: the incident's own timeline, one Evidence per entry ('incident-1'...). Pure: no I/O.

The timeline is the workflow's record (its history is the truth), so this source is never skipped or failed.
An incident with more entries than a SourceResult may carry keeps its first and its last, then the entries
that say most about the response (opened, acknowledged, escalated, mitigated, resolved, what people said...)
before the chatter (pages sent, deliveries, syncs), earliest first within each rank.

What people said is evidence of its own kind, attributed: a resolution or mitigation summary, a note, a
severity change's or an escalation's reason, a runbook's outcome ("alice, at resolution: root cause: ...").
The analyzers take the stated cause from these (`said` and `by`), so each carries who said it and when.
"""

from __future__ import annotations

import re

from tocsin.durations import format_elapsed
from tocsin.incident.contracts import IncidentState, TimelineEntry
from tocsin.postmortem.contracts import EVIDENCE_LIMIT, Evidence, IncidentEvidenceRequest, SourceResult, Statement
from tocsin.postmortem.sources.results import Finding, number

# Timeline kinds (workflows/incident/core.py `record`) by how much they say about the response; unknown kinds
# rank between the second and the last group.
RANKS: dict[str, int] = {
    **dict.fromkeys(
        (
            "first_alert",
            "opened",
            "acknowledged",
            "escalated",
            "mitigated",
            "resolved",
            "severity_changed",
            "breach",
            "chain_exhausted",
            "note",
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

# "resolved by alice: <summary>", "mitigated by alice via Slack: <summary>", "escalated by bob: <reason>"
# (workflows/incident/requests.py); the words are what follows the first ": ".
_BY_PERSON = re.compile(r"^(resolved|mitigated|escalated) by [^:]+: (?P<words>.+)$", re.S)
# "sev2 → sev1 by bob: <reason>"
_SEVERITY = re.compile(r"^(?P<change>\S+ → \S+) by [^:]+: (?P<words>.+)$", re.S)
# "rollback-ledger succeeded: verified: error rate 0.2%" (a runbook's last word)
_RUNBOOK_END = re.compile(r"^(?P<name>\S+) (?P<outcome>succeeded|failed|refused|rejected): (?P<words>.+)$", re.S)
_AT: dict[str, tuple[Statement, str]] = {
    "resolved": ("resolution", "at resolution"),
    "mitigated": ("mitigation", "at mitigation"),
    "escalated": ("escalation", "at escalation"),
}


def summary_of(entry: TimelineEntry) -> str:
    kind = "first alert" if entry.kind == "first_alert" else entry.kind
    return f"{kind}: {entry.text}" + (f" (by {entry.by})" if entry.by else "")


def statement_of(entry: TimelineEntry) -> tuple[Statement, str, str] | None:
    """(when it was said, who said it, the attributed summary) for an entry that carries people's words."""
    text = " ".join(entry.text.split())
    who = entry.by or ""
    if entry.kind in _AT and who:
        found = _BY_PERSON.match(text)
        # A record written elsewhere (an import, an older version) may hold the bare words.
        words = found["words"] if found else ("" if text.startswith(f"{entry.kind} by ") else text)
        if words:
            said, where = _AT[entry.kind]
            return said, who, f"{who}, {where}: {words}"
    elif entry.kind == "note" and who and text:
        return "note", who, f"{who}, in a note: {text}"
    elif entry.kind == "severity_changed" and who:
        found = _SEVERITY.match(text)
        if found:
            return "severity", who, f"{who}, changing severity {found['change']}: {found['words']}"
    elif entry.kind == "runbook":
        found = _RUNBOOK_END.match(text)
        if found:
            name = f"runbook {found['name']}"
            return "runbook", name, f"{name}, outcome: {found['outcome']}: {found['words']}"
    return None


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


def _evidence(entry: TimelineEntry, numbered: Evidence) -> Evidence:
    statement = statement_of(entry)
    if statement is None:
        return numbered.model_copy(update={"kind": entry.kind})
    said, who, _ = statement
    return numbered.model_copy(update={"kind": entry.kind, "said": said, "by": who})


def first_alert(incident: IncidentState) -> TimelineEntry | None:
    """The first alert as an entry of its own when it came before the opening (a busy worker opens late): the
    story starts there, and the wait before the opening shows."""
    first, opened = incident.first_alert_at, incident.opened_at
    if first is None or first >= opened:
        return None
    waited = format_elapsed(opened - first)
    return TimelineEntry(at=first, kind="first_alert", text=f"{incident.title} ({waited} before the incident opened)")


def incident_evidence(request: IncidentEvidenceRequest, limit: int = EVIDENCE_LIMIT) -> SourceResult:
    timeline = request.incident.timeline
    alert = first_alert(request.incident)
    entries = [timeline[i] for i in select(timeline, limit - 1 if alert else limit)]
    # Numbered in time order (the record's order at equal instants), so the entries and their evidence align.
    kept = sorted(([alert] if alert else []) + entries, key=lambda e: e.at)
    findings = []
    for entry in kept:
        statement = statement_of(entry)
        findings.append(Finding(entry.at, statement[2] if statement else summary_of(entry)))
    numbered = number("incident", findings, limit)
    evidence = [_evidence(entry, item) for entry, item in zip(kept, numbered, strict=True)]
    dropped = len(entries) < len(timeline)
    reason = f"{len(timeline)} timeline entries, {len(entries)} kept as evidence" if dropped else ""
    return SourceResult(source="incident", status="ok", reason=reason, evidence=evidence)
