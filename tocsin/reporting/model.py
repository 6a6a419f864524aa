"""The report's data: what `report.json` holds, what the HTML and CSV are rendered from.

Durations are seconds (floats), instants are UTC: a script reading report.json needs no duration parser.
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PageFact(_Model):
    """One page a provider took for a person: a delivery on a paging channel (tocsin.reporting.facts)."""

    person: str = Field(description="the roster id, or the address when the roster does not know it")
    at: datetime
    level: int = Field(description="the escalation level reached when it went out (0 before the chain's first page)")
    timezone: str = Field(description="the person's roster timezone; UTC when the roster does not know them")
    out_of_hours: bool


class IncidentFacts(_Model):
    """One incident's figures, from its own timestamps (clock start = its first alert, as the post-mortem)."""

    key: str
    title: str
    service: str
    severity: str
    status: str
    clock_start: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    mtta_seconds: float | None = Field(description="acknowledged - clock start; None if never acknowledged")
    mttr_seconds: float | None = Field(description="resolved - clock start; None while unresolved")
    escalation_depth: int = Field(description="the highest escalation level paged (0: nobody was paged)")
    pages: list[PageFact]


class Stat(_Model):
    """A duration's spread over the incidents that have it."""

    count: int
    median_seconds: float | None
    p90_seconds: float | None


class ResponseRow(_Model):
    """MTTA and MTTR for one service and severity (or '*' for all)."""

    service: str
    severity: str
    incidents: int
    mtta: Stat
    mttr: Stat


class PersonRow(_Model):
    person: str
    name: str
    timezone: str
    pages: int
    out_of_hours_pages: int


class DayCount(_Model):
    day: date
    incidents: int


class DepthCount(_Model):
    depth: int
    incidents: int


class Definitions(_Model):
    """How the figures are computed, stated in the report itself (docs/report.md says the same)."""

    clock_start: str
    mtta: str
    mttr: str
    median: str
    p90: str
    out_of_hours: str
    pages: str
    escalation_depth: str
    incidents_per_day: str


class Report(_Model):
    generated_at: datetime
    since: datetime
    until: datetime
    limit: int = Field(description="at most this many incidents were read")
    truncated: bool = Field(description="more incidents started in the window than `limit`: the oldest are left out")
    skipped: list[str] = Field(default_factory=list, description="incidents listed but not readable, and why")
    definitions: Definitions
    overall: ResponseRow
    by_service_severity: list[ResponseRow]
    people: list[PersonRow]
    per_day: list[DayCount]
    escalation_depth: list[DepthCount]
    incidents: list[IncidentFacts]
