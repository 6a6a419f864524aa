"""The policy's `postmortem:` block: what evidence to gather, what the objectives are, how review and
follow-through are paced, and who owns action items. Every field has a default an SRE would pick.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field

from tocsin.durations import Duration
from tocsin.policy.fields import Strict, Template

Priority = Literal["P1", "P2", "P3"]
DEFAULT_DUE: dict[Priority, timedelta] = {"P1": timedelta(days=7), "P2": timedelta(days=30), "P3": timedelta(days=90)}


class Sli(Strict):
    """A service-level indicator: a PromQL query (a label template) and the objective it is held to."""

    query: Template
    objective: float = Field(description="the target, in the query's unit: 0.999 availability, 0.5 s latency")
    # Which side of the objective is bad: error rate and latency above it, availability below it.
    worse_is: Literal["higher", "lower"] = "higher"


class Logs(Strict):
    """Loki's LogQL query per service (a label template) and how many lines of it the report may sample."""

    query: Template = '{service="{{ $labels.service }}"} |~ "(?i)error|exception|fatal"'
    limit: int = Field(default=200, ge=1, le=5000)


class Review(Strict):
    deadline: Duration = timedelta(days=5)
    remind_every: Duration = timedelta(days=1)
    # Roster people, teams or rotations: only a person who holds one of them may approve or request changes.
    reviewers: list[str] = Field(default_factory=lambda: ["engineering_manager"])
    # Rounds of "request changes" before a revision must be approved (or left unreviewed): review ends.
    max_change_requests: int = Field(default=5, ge=0, le=50)


class FollowUp(Strict):
    check_every: Duration = timedelta(days=7)
    horizon: Duration = timedelta(days=90)


class ActionItems(Strict):
    """Who owns action items nobody else claimed, and when each priority is due (from the report's approval)."""

    default_owner: str = "sre"
    due: dict[Priority, Duration] = Field(default_factory=lambda: dict(DEFAULT_DUE))


class ImpactCosts(Strict):
    """Optional: affected users and cost per minute of the incident, where the business knows them."""

    users_per_minute: float | None = Field(default=None, ge=0)
    cost_per_minute: float | None = Field(default=None, ge=0)
    currency: str = "USD"


class PostmortemPolicy(Strict):
    # The window gathered: from `window_before` the opening to `window_after` the resolution.
    window_before: Duration = timedelta(minutes=30)
    window_after: Duration = timedelta(minutes=15)
    # Changes (deployments, merged pull requests, commits) looked for before the opening.
    changes_before: Duration = timedelta(hours=6)
    step: Duration = timedelta(seconds=60)
    slis: dict[str, Sli] = Field(default_factory=dict)
    logs: Logs = Field(default_factory=Logs)
    review: Review = Field(default_factory=Review)
    follow_up: FollowUp = Field(default_factory=FollowUp)
    action_items: ActionItems = Field(default_factory=ActionItems)
    impact: ImpactCosts = Field(default_factory=ImpactCosts)
    # Where the approved report is committed in TOCSIN_GITHUB_REPO ({key} is the incident key).
    report_path: str = Field(default="postmortems/{key}.md", pattern=r"^[A-Za-z0-9_./{}-]+\.md$")
