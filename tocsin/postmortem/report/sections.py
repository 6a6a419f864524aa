"""The report's prose, from the incident's own record: the summary paragraph, the impact facts, and what went
well and poorly. Pure: no clock, no I/O.

"What went well / poorly" is derived from the record only: the acknowledgement and mitigation against the
breaches the incident recorded, runbook outcomes, automatic actions, notifications that failed, evidence that
could not be gathered, and the response's gaps (tocsin.postmortem.report.gaps: time to the first page, levels
the chain reached, a runbook that verified the fix). It names people only as the record names them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tocsin.durations import format_elapsed
from tocsin.postmortem.contracts import ReportRequest
from tocsin.postmortem.report.gaps import Line, response_gaps

LIST_LIMIT = 5  # bullets of one kind (failed deliveries, breaches) before "and N more"
_RUNBOOK_END = re.compile(r"^(?P<name>\S+) (?P<outcome>succeeded|failed|refused|rejected): (?P<reason>.*)$", re.S)
_REMEDIATION = re.compile(r"^(?P<action>[^:]+): (?P<outcome>done|queued|failed)\b(?P<rest>.*)$", re.S)


@dataclass(frozen=True)
class Fact:
    """One row of the impact table: "Time to acknowledge", "4 minutes"."""

    label: str
    value: str


def when(value: datetime, *, seconds: bool = False, suffix: bool = True) -> str:
    """A time as the report prints it, in UTC: "2026-03-14 14:02 UTC" (or to the second, or without "UTC")."""
    text = value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    return f"{text} UTC" if suffix else text


def _clock(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%H:%M UTC")


def _percent(ratio: float) -> str:
    """A ratio (0.999) as a percentage ("99.9%"), to at most three decimals."""
    return f"{ratio * 100:.3f}".rstrip("0").rstrip(".") + "%"


def _seconds(value: float) -> str:
    return f"{round(value * 1000)} ms" if value < 1 else f"{value:.2f}".rstrip("0").rstrip(".") + " s"


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    return text[:1].upper() + text[1:] if text else text


def _stop(text: str) -> str:
    """One line, ending with a full stop."""
    text = " ".join(text.split())
    return text if text.endswith((".", "!", "?")) else f"{text}."


def plural(n: int, noun: str) -> str:
    """A count and its noun: "1 notification", "2 notifications"."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def summary(request: ReportRequest) -> str:
    incident, impact = request.incident, request.impact
    parts = [
        f"{incident.title}: {incident.service} ({incident.severity}) was affected for "
        f"{format_elapsed(impact.duration)}, from {when(incident.opened_at)}"
        + (f" to {when(incident.resolved_at)}." if incident.resolved_at else ".")
    ]
    if incident.acknowledged_at:
        who = f" by {incident.acknowledged_by}" if incident.acknowledged_by else ""
        took = format_elapsed(incident.acknowledged_at - incident.opened_at)
        parts.append(f"It was acknowledged{who} {took} after it opened.")
    if incident.resolved_at:
        who = f" by {incident.resolved_by}" if incident.resolved_by else ""
        how = f": {_stop(incident.resolution_summary)}" if incident.resolution_summary else "."
        parts.append(f"It was resolved{who}{how}")
    cause = request.analysis.primary_cause
    parts.append(
        f"Primary cause ({request.analysis.analyzer}): {_stop(cause.text)}"
        if cause
        else "No primary cause is supported by the evidence gathered."
    )
    return " ".join(parts)


def impact_facts(request: ReportRequest) -> tuple[Fact, ...]:
    impact = request.impact

    def elapsed(value: Any, otherwise: str) -> str:
        return format_elapsed(value) if value is not None else otherwise

    facts = [
        Fact("Duration", format_elapsed(impact.duration)),
        Fact("Time to acknowledge", elapsed(impact.time_to_acknowledge, "not acknowledged")),
        Fact("Time to mitigate", elapsed(impact.time_to_mitigate, "not recorded")),
        Fact("Time to resolve", elapsed(impact.time_to_resolve, "not recorded")),
        Fact(
            "Peak error rate",
            _percent(impact.peak_error_rate) if impact.peak_error_rate is not None else "not measured",
        ),
        Fact(
            "Lowest availability",
            _percent(impact.lowest_availability) if impact.lowest_availability is not None else "not measured",
        ),
        Fact(
            "Worst p95 latency",
            _seconds(impact.worst_latency_p95) if impact.worst_latency_p95 is not None else "not measured",
        ),
        Fact("SLO breaches", ", ".join(impact.slo_breaches) or "none recorded"),
        Fact("Services", ", ".join(impact.services) or request.incident.service),
    ]
    if impact.affected_users is not None:
        facts.append(Fact("Affected users (estimate)", f"{impact.affected_users:,}"))
    if impact.estimated_cost is not None:
        facts.append(Fact("Estimated cost", f"{impact.estimated_cost:,.2f}"))
    return tuple(facts)


Dated = tuple[datetime, str | Line]


def _capped(lines: list[Dated], what: str) -> list[Dated]:
    if len(lines) <= LIST_LIMIT:
        return lines
    return [*lines[:LIST_LIMIT], (lines[LIST_LIMIT][0], f"And {len(lines) - LIST_LIMIT} more {what}.")]


def went_well_and_poorly(request: ReportRequest, missing: Iterable[str]) -> tuple[list[Line], list[Line]]:
    """Factual bullets from the incident's record, in time order; nothing is judged, and nobody is named who is
    not named in it."""
    incident = request.incident
    breaches = set(incident.escalation.breaches)
    well: list[Dated] = []
    poorly: list[Dated] = []
    if incident.acknowledged_at is not None:
        who = f" by {incident.acknowledged_by}" if incident.acknowledged_by else ""
        took = format_elapsed(incident.acknowledged_at - incident.opened_at)
        if "response" not in breaches:
            well.append(
                (incident.acknowledged_at, f"Acknowledged{who} {took} after opening; no response target was missed.")
            )
    elif incident.resolved_at is not None:
        poorly.append((incident.resolved_at, "The incident was not acknowledged before it was resolved."))
    if incident.mitigated_at is not None and "mitigation" not in breaches:
        took = format_elapsed(incident.mitigated_at - incident.opened_at)
        well.append((incident.mitigated_at, f"Mitigated {took} after opening; no mitigation target was missed."))

    by_kind: dict[str, list[tuple[datetime, str]]] = {}
    for entry in incident.timeline:
        by_kind.setdefault(entry.kind, []).append((entry.at, " ".join(entry.text.split())))

    def dated(kind: str, line: str) -> list[Dated]:
        return [
            (at, line.format(text=text, sentence=_sentence(text), at=_clock(at))) for at, text in by_kind.get(kind, [])
        ]

    poorly += _capped(dated("breach", "{sentence} ({at})."), "breaches")
    poorly += dated("chain_exhausted", "{sentence} ({at}).")
    poorly += _capped(
        [
            (at, f"Management escalation: {text.removeprefix('management escalation ')} ({_clock(at)}).")
            for at, text in by_kind.get("management", [])
        ],
        "management escalations",
    )
    for at, text in by_kind.get("runbook", []):
        end = _RUNBOOK_END.match(text)
        if end:
            line = f"Runbook {end['name']} {end['outcome']}: {end['reason']} ({_clock(at)})."
            (well if end["outcome"] == "succeeded" else poorly).append((at, line))
    for at, text in by_kind.get("remediation", []):
        done = _REMEDIATION.match(text)
        if done:
            line = f"Automatic action {done['action']}: {done['outcome']}{done['rest']} ({_clock(at)})."
            (poorly if done["outcome"] == "failed" else well).append((at, line))
    gains, losses = response_gaps(request)
    well += gains
    poorly += losses
    failed = dated("delivery_failed", "Notification not delivered: {text} ({at}).")
    poorly += _capped(failed, "notifications not delivered")
    delivered = by_kind.get("delivered", [])
    well_lines = [_line(line) for _, line in sorted(well, key=lambda d: d[0])]
    poorly_lines = [_line(line) for _, line in sorted(poorly, key=lambda d: d[0])]
    if delivered:
        well_lines.append(
            Line(
                f"All {plural(len(delivered), 'notification')} delivered."
                if not failed
                else f"{plural(len(delivered), 'notification')} delivered."
            )
        )
    gaps = list(missing)
    if gaps:
        poorly_lines.append(Line(f"Evidence could not be gathered from: {'; '.join(gaps)}."))
    return well_lines, poorly_lines


def _line(line: str | Line) -> Line:
    return line if isinstance(line, Line) else Line(line)
