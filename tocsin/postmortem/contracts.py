"""What the post-mortem pipeline passes between its workflow and its activities: one pydantic model each.

Everything here lands in the PostMortemWorkflow's history, so it stays small: bulky data (metric series, log
lines, diffs) is written by the activities to the artifact store and travels as an ArtifactRef. Evidence
items are short and carry an `id` that analysis claims cite; a claim citing an unknown id is dropped.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tocsin.incident.contracts import IncidentState
from tocsin.policy.postmortem import PostmortemPolicy

SourceName = Literal["incident", "metrics", "logs", "changes", "pagerduty"]
SourceStatus = Literal["ok", "skipped", "failed"]
Priority = Literal["P1", "P2", "P3"]
# When people's words were said: at resolution, at mitigation, in a note, with a severity change or an
# escalation, or a runbook's outcome (the runbook speaks for the responder who wrote it).
Statement = Literal["resolution", "mitigation", "note", "severity", "escalation", "runbook"]
SUMMARY_LIMIT = 300
EVIDENCE_LIMIT = 200


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ArtifactRef(_Model):
    """A file in the artifact store (`$TOCSIN_HOME/artifacts/` by default), relative to its root."""

    path: str
    sha256: str
    size: int
    media_type: str = "application/json"


class Evidence(_Model):
    """One citable fact. `id` is unique within a post-mortem: '<source>-<n>' ('metrics-3', 'changes-1')."""

    id: str
    source: SourceName
    at: datetime | None = None
    summary: str = Field(max_length=SUMMARY_LIMIT)
    # Where it comes from, for a reader: a URL, a PromQL query, a commit sha.
    link: str = ""
    # The incident record's entry kind ('page', 'delivered', 'resolved'...): what the story timeline folds and
    # orders by, without parsing the summary back.
    kind: str = ""
    # People's words (a resolution or mitigation summary, a note, a reason, a runbook's outcome): when it was
    # said and by whom. The analyzers take a cause from these, so they travel as data, not as prose to re-parse.
    said: Statement | None = None
    by: str = ""


class SeriesSummary(_Model):
    """One metric series over the incident window, reduced to what the analysis and the impact need."""

    name: str  # the SLI or trigger it answers: 'error_rate', 'availability', 'latency_p95', a trigger's name
    labels: str = ""
    onset: datetime | None = None  # first sample past the objective (or unusual against the baseline)
    peak_at: datetime | None = None
    peak: float | None = None  # the worst value: highest error rate or latency, lowest availability
    recovery: datetime | None = None  # first sample back within the objective after the onset, that stayed
    worse_is: Literal["higher", "lower"] = "higher"


class SourceResult(_Model):
    """What one source yielded. A source that fails or is not configured never fails the post-mortem."""

    source: SourceName
    status: SourceStatus
    reason: str = ""  # why skipped or failed, for the report's "missing evidence" section
    evidence: list[Evidence] = Field(default_factory=list, max_length=EVIDENCE_LIMIT)
    series: list[SeriesSummary] = Field(default_factory=list)
    artifact: ArtifactRef | None = None


class GatherRequest(_Model):
    """Input of every gather activity: the incident's identity and window, and the policy's post-mortem block."""

    key: str
    service: str
    severity: str
    labels: dict[str, str] = Field(default_factory=dict)
    opened_at: datetime
    resolved_at: datetime
    settings: PostmortemPolicy

    @property
    def window(self) -> tuple[datetime, datetime]:
        return self.opened_at - self.settings.window_before, self.resolved_at + self.settings.window_after


class IncidentEvidenceRequest(_Model):
    """The incident's own record: its timeline as the parent's final state says (history is the truth)."""

    incident: IncidentState
    parent_workflow_id: str
    parent_run_id: str


class TimelineEvent(_Model):
    id: str  # the evidence id it came from
    at: datetime
    source: SourceName
    text: str
    kind: str = ""  # the incident record's entry kind, when it came from the incident


class Impact(_Model):
    duration: timedelta
    # From the first alert, as every time here (tocsin.postmortem.impact); None when nobody was paged.
    time_to_first_page: timedelta | None = None
    time_to_acknowledge: timedelta | None = None
    time_to_mitigate: timedelta | None = None
    time_to_resolve: timedelta | None = None
    peak_error_rate: float | None = None
    lowest_availability: float | None = None
    worst_latency_p95: float | None = None  # seconds
    slo_breaches: list[str] = Field(default_factory=list)
    services: list[str] = Field(default_factory=list)
    affected_users: int | None = None
    estimated_cost: float | None = None


class Claim(_Model):
    text: str
    evidence: list[str] = Field(default_factory=list)
    # The responders' own words this claim states ("connection pool exhausted after deploy 2041 ..."), when it
    # does: the action-item rules read the cause from them rather than from the claim's judgement of them.
    stated: str = ""


class ActionItem(_Model):
    title: str
    description: str = ""
    owner: str
    priority: Priority = "P2"
    due: date
    origin: Literal["rule", "analysis", "review"] = "rule"
    evidence: list[str] = Field(default_factory=list)


class Analysis(_Model):
    analyzer: str  # 'built-in' or 'llm:<model>'
    primary_cause: Claim | None = None
    contributing_factors: list[Claim] = Field(default_factory=list)
    preventive_measures: list[Claim] = Field(default_factory=list)
    lessons_learned: list[Claim] = Field(default_factory=list)
    action_items: list[ActionItem] = Field(default_factory=list)
    confidence: float = Field(ge=0.0, le=1.0)
    # What the analysis step itself says about its work: claims dropped, the LLM's failure before the fallback.
    notes: list[str] = Field(default_factory=list)


class AnalysisRequest(_Model):
    key: str
    title: str
    service: str
    severity: str
    timeline: list[TimelineEvent]
    evidence: list[Evidence]
    series: list[SeriesSummary]
    impact: Impact
    # A reviewer's `request_changes` notes, for a regenerated draft.
    review_notes: list[str] = Field(default_factory=list)
    settings: PostmortemPolicy


class ReportRequest(_Model):
    incident: IncidentState
    sources: list[SourceResult]
    timeline: list[TimelineEvent]
    impact: Impact
    analysis: Analysis
    action_items: list[ActionItem]
    revision: int = 1
    review_notes: list[str] = Field(default_factory=list)
    approved_by: str | None = None
    # Once published: the action items' issues, so the committed report links them.
    published: list[PublishedItem] = Field(default_factory=list)


class Draft(_Model):
    """A rendered report: Markdown and HTML under `$TOCSIN_HOME/postmortems/`, and their digest."""

    key: str
    revision: int
    markdown: ArtifactRef
    html: ArtifactRef


class PublishRequest(_Model):
    key: str
    draft: Draft
    action_items: list[ActionItem]
    idempotency_key: str
    # The policy's postmortem.report_path ('{key}' filled in by the activity); None: the worker's default.
    report_path: str | None = None


class PublishedItem(_Model):
    title: str
    owner: str
    due: date
    issue_number: int | None = None
    issue_url: str = ""


class Publication(_Model):
    report_url: str = ""
    items: list[PublishedItem] = Field(default_factory=list)
    # Where nothing was published and why (no GitHub configured: the report stays on disk).
    notes: list[str] = Field(default_factory=list)


class FollowUpRequest(_Model):
    key: str
    items: list[PublishedItem]
    today: date


class ItemState(_Model):
    issue_number: int
    open: bool
    overdue: bool


class FollowUpReport(_Model):
    items: list[ItemState]


ReportRequest.model_rebuild()
