"""The post-mortem's own state (query `status`), its updates, and what continue-as-new carries.

Kept apart from tocsin.postmortem.contracts so tocsin.incident.contracts can carry it without an import cycle: nothing
here refers to the incident's models.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Phase = Literal["gathering", "analysing", "in_review", "publishing", "following_up", "done", "unreviewed"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReviewNote(_Model):
    by: str
    notes: str
    at: datetime


class TrackedItem(_Model):
    """An action item after publication: its issue, and whether it is still open."""

    title: str
    owner: str
    due: datetime
    issue_number: int | None = None
    issue_url: str = ""
    open: bool = True
    nudged: int = 0


class PostMortemState(_Model):
    key: str
    phase: Phase = "gathering"
    input_ref: str = ""  # where the hand-off was recorded
    revision: int = 0
    draft_markdown: str = ""  # the local path of the latest draft, for people
    analyzer: str = ""
    sources: dict[str, str] = Field(default_factory=dict)  # source -> "ok" | "skipped: why" | "failed: why"
    review_notes: list[ReviewNote] = Field(default_factory=list)
    reminders: int = 0
    approved_by: str | None = None
    approved_at: datetime | None = None
    report_url: str = ""
    items: list[TrackedItem] = Field(default_factory=list)
    checks: int = 0
    # request_id -> answer, so a retried approve or request_changes is applied once.
    handled: dict[str, str] = Field(default_factory=dict)


class ApproveRequest(_Model):
    by: str = Field(min_length=1)
    request_id: str | None = None


class RequestChangesRequest(_Model):
    by: str = Field(min_length=1)
    notes: str = Field(min_length=1, max_length=4000)
    request_id: str | None = None


class ReviewAnswer(_Model):
    key: str
    phase: Phase
    revision: int
    message: str
