"""The post-mortem report: a view-model built from the ReportRequest (pure), rendered as Markdown and HTML.

Both templates render in Jinja2's immutable sandbox with StrictUndefined, from the built-in `templates/`
(found as the status page's is, tocsin.sandboxed_templates: beside the package, else /app/templates). A
template in `$TOCSIN_HOME/templates/` with the same name (`postmortem.md.j2`, `postmortem.html.j2`) replaces the
built-in one, and is sandboxed the same way: a template that reaches for `__class__` fails to render.

Titles, alert summaries, log lines and the analysis' claims are untrusted text (anyone who can post an alert
writes some of it). The Markdown environment runs every `{{ ... }}` through `md_escape` (its `finalize`): line
breaks fold into spaces, and `|`, `\\`, backticks, brackets and angle brackets are escaped, so such text can
break neither a table row nor the page (no HTML, no links, no images, no code spans). The HTML template renders
the same view-model with autoescape on, and links only http(s) URLs. Nothing here reads the clock: the same
request renders the same bytes, which is what lets a retried publish see an identical file and skip it.

The view-model derives "what went well / poorly" from the incident's own record only: the acknowledgement and
mitigation against the breaches the incident recorded, runbook outcomes, automatic actions, notifications that
failed, evidence that could not be gathered. It names people only as the record names them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup

from tocsin.durations import format_elapsed
from tocsin.postmortem.models import (
    ActionItem,
    Claim,
    Evidence,
    PublishedItem,
    ReportRequest,
    SourceName,
)
from tocsin.sandboxed_templates import TemplateMissing, builtin_dir, search_path

MARKDOWN_TEMPLATE = "postmortem.md.j2"
HTML_TEMPLATE = "postmortem.html.j2"
SOURCES: tuple[SourceName, ...] = ("incident", "metrics", "logs", "changes", "pagerduty")
LIST_LIMIT = 5  # bullets of one kind (failed deliveries, breaches) before "and N more"
_SAFE_URL = re.compile(r"^https?://[A-Za-z0-9.\-]+(:\d+)?(/[A-Za-z0-9._~%!$&'*+,;=:@/?#-]*)?$")
_MD_ESCAPES = str.maketrans({"\\": "\\\\", "`": "\\`", "|": "\\|", "[": "\\[", "]": "\\]", "<": "&lt;", ">": "&gt;"})
# What starts a block at the start of a line: a heading, a list item, a thematic break or setext underline.
_BLOCK_START = re.compile(r"^(?:#{1,6}|[-+*])(?=\s|$)|^(?:[-*_=]\s*){3,}$")
_NUMBERED = re.compile(r"^(\d{1,9})([.)])(?=\s|$)")
_RUNBOOK_END = re.compile(r"^(?P<name>\S+) (?P<outcome>succeeded|failed|refused|rejected): (?P<reason>.*)$", re.S)
_REMEDIATION = re.compile(r"^(?P<action>[^:]+): (?P<outcome>done|queued|failed)\b(?P<rest>.*)$", re.S)


class ReportTemplateError(Exception):
    """A template that does not render: a syntax error, an undefined name, or an unsafe access."""


# --- the view-model -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fact:
    label: str
    value: str


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
    timeline: tuple[TimelineRow, ...]
    primary_cause: Cited | None
    contributing: tuple[Cited, ...]
    went_well: tuple[str, ...]
    went_poorly: tuple[str, ...]
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
    well, poorly = _went(request, missing)
    claims = [
        *([analysis.primary_cause] if analysis.primary_cause else []),
        *analysis.contributing_factors,
        *analysis.preventive_measures,
        *analysis.lessons_learned,
    ]
    cited = list(
        dict.fromkeys([i for c in claims for i in c.evidence] + [i for a in request.action_items for i in a.evidence])
    )
    return ReportView(
        key=incident.key,
        title=incident.title,
        severity=incident.severity,
        service=incident.service,
        opened=_when(incident.opened_at),
        resolved=_when(incident.resolved_at) if incident.resolved_at else "not resolved",
        status=f"approved by {request.approved_by}" if request.approved_by else "draft",
        revision=request.revision,
        analyzer=analysis.analyzer,
        confidence=f"{round(analysis.confidence * 100)}%",
        summary=_summary(request),
        impact=_impact(request),
        timeline=tuple(
            TimelineRow(at=_when(t.at, seconds=True, suffix=False), source=t.source, text=t.text, evidence=t.id)
            for t in sorted(request.timeline, key=lambda t: t.at)
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


def _when(value: datetime, *, seconds: bool = False, suffix: bool = True) -> str:
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


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _summary(request: ReportRequest) -> str:
    incident, impact = request.incident, request.impact
    parts = [
        f"{incident.title}: {incident.service} ({incident.severity}) was affected for "
        f"{format_elapsed(impact.duration)}, from {_when(incident.opened_at)}"
        + (f" to {_when(incident.resolved_at)}." if incident.resolved_at else ".")
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


def _impact(request: ReportRequest) -> tuple[Fact, ...]:
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
        at=_when(found.at, seconds=True, suffix=False) if found.at else "",
        summary=found.summary,
        link=found.link,
        href=safe_url(found.link),
    )


def _sources(request: ReportRequest) -> tuple[SourceRow, ...]:
    rows = []
    seen = {s.source for s in request.sources}
    for result in request.sources:
        if result.status == "ok":
            detail = _plural(len(result.evidence), "evidence item") + (
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


Dated = tuple[datetime, str]


def _capped(lines: list[Dated], what: str) -> list[Dated]:
    if len(lines) <= LIST_LIMIT:
        return lines
    return [*lines[:LIST_LIMIT], (lines[LIST_LIMIT][0], f"And {len(lines) - LIST_LIMIT} more {what}.")]


def _went(request: ReportRequest, missing: Iterable[str]) -> tuple[list[str], list[str]]:
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

    by_kind: dict[str, list[Dated]] = {}
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
    failed = dated("delivery_failed", "Notification not delivered: {text} ({at}).")
    poorly += _capped(failed, "notifications not delivered")
    delivered = by_kind.get("delivered", [])
    well_lines = [line for _, line in sorted(well, key=lambda d: d[0])]
    poorly_lines = [line for _, line in sorted(poorly, key=lambda d: d[0])]
    if delivered:
        well_lines.append(
            f"All {_plural(len(delivered), 'notification')} delivered."
            if not failed
            else f"{_plural(len(delivered), 'notification')} delivered."
        )
    gaps = list(missing)
    if gaps:
        poorly_lines.append(f"Evidence could not be gathered from: {'; '.join(gaps)}.")
    return well_lines, poorly_lines


# --- rendering ------------------------------------------------------------------------------------------


def md_escape(value: Any) -> str:
    """Untrusted text made inert in Markdown: one line, and nothing that opens a cell, a tag, a link or code."""
    if isinstance(value, Markup):  # explicitly marked safe (`|safe` in a template)
        return str(value)
    text = " ".join(str(value).split()).translate(_MD_ESCAPES)
    # A block marker at the start is inert behind a backslash.
    text = _BLOCK_START.sub(r"\\\g<0>", text, count=1)
    return _NUMBERED.sub(r"\1\\\2", text, count=1)


def template_dir() -> Path:
    """The built-in templates directory that holds both report templates, found as every built-in template is
    (tocsin.sandboxed_templates: beside the package, else the image's /app/templates; never the working
    directory, where any `templates/` would otherwise replace the report's)."""
    try:
        return builtin_dir([MARKDOWN_TEMPLATE, HTML_TEMPLATE])
    except TemplateMissing as err:
        raise ReportTemplateError(str(err)) from None


@dataclass(frozen=True)
class RenderedReport:
    markdown: str
    html: str


class ReportRenderer:
    """Both templates, from `$TOCSIN_HOME/templates/` when a file of the same name is there, else built in.

    Templates are looked up at each render (Jinja reloads a changed file), so an override takes effect without
    a worker restart; the built-in ones must exist when the renderer is made."""

    def __init__(self, home: Path | None = None, templates: Path | None = None) -> None:
        searchpath = [str(p) for p in search_path(home, templates or template_dir())]
        self.searchpath = searchpath
        loader = jinja2.FileSystemLoader(searchpath)
        common: dict[str, Any] = {
            "loader": loader,
            "undefined": jinja2.StrictUndefined,
            "trim_blocks": True,
            "lstrip_blocks": True,
            "keep_trailing_newline": True,
        }
        self._markdown = ImmutableSandboxedEnvironment(autoescape=False, finalize=md_escape, **common)
        self._html = ImmutableSandboxedEnvironment(autoescape=True, **common)

    def render(self, request: ReportRequest, published: Sequence[PublishedItem] = ()) -> RenderedReport:
        view = build_view(request, published)
        return RenderedReport(
            markdown=self._render(self._markdown, MARKDOWN_TEMPLATE, view),
            html=self._render(self._html, HTML_TEMPLATE, view),
        )

    def markdown(self, view: ReportView) -> str:
        return self._render(self._markdown, MARKDOWN_TEMPLATE, view)

    def html(self, view: ReportView) -> str:
        return self._render(self._html, HTML_TEMPLATE, view)

    def _render(self, env: jinja2.Environment, name: str, view: ReportView) -> str:
        where = name
        try:
            template = env.get_template(name)
            where = template.filename or name
            return template.render(view=view)
        except jinja2.TemplateSyntaxError as err:
            raise ReportTemplateError(f"{err.filename or where}:{err.lineno}: {err.message}") from None
        except jinja2.TemplateNotFound:
            raise ReportTemplateError(f"{name} not found in {', '.join(self.searchpath)}") from None
        except jinja2.exceptions.SecurityError as err:
            raise ReportTemplateError(f"{where}: refused by the sandbox: {err}") from None
        except jinja2.TemplateError as err:
            raise ReportTemplateError(f"{where}: {type(err).__name__}: {err}") from None
