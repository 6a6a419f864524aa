"""What detection runs carry: the triggers' queries, Prometheus' answers, the state from run to run and what a
run hands to intake. Pydantic models in DetectionWorkflow's history (tocsin.detection.evaluate decides on them).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tocsin.intake.contracts import NormalizedAlert
from tocsin.policy.shared import SharedPolicy

# Alerts handed to intake per activity call: an AlertBatch takes at most 1000 events per incident.
HANDOFF_CHUNK = 500


MAX_ERROR = 300


MAX_VALUE = 40


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TriggerQuery(_Model):
    id: str = Field(description="'<response workflow>/<alert name>': the trigger's state key")
    expr: str
    # Set on every series' labels, overriding them, as Prometheus sets a rule's labels and alertname.
    labels: dict[str, str]


class EvaluationRequest(_Model):
    queries: list[TriggerQuery]
    max_series: int = Field(ge=1, le=1000)
    timeout_seconds: float = Field(gt=0, le=120)


class SeriesSample(_Model):
    # Labels of the series that the trigger's own labels do not override: the alert's are these plus those.
    labels: dict[str, str]
    value: str = ""


class TriggerEvaluation(_Model):
    # Alertmanager fingerprint of the alert's labels -> the series.
    series: dict[str, SeriesSample] = Field(default_factory=dict)
    # Series returned beyond max_series (not tracked: absent is not "cleared" for this run).
    truncated: int = 0
    error: str | None = None
    # bad_query: Prometheus refused it (4xx, or not an instant vector); unavailable: try again next run.
    error_kind: Literal["bad_query", "unavailable"] | None = None


class Evaluation(_Model):
    at: datetime
    triggers: dict[str, TriggerEvaluation]


class FiringSeries(_Model):
    labels: dict[str, str] = Field(description="the alert's full labels, to resolve it later")
    since: datetime = Field(description="when the condition was first seen (the alert's startsAt)")


class TriggerState(_Model):
    pending: dict[str, datetime] = Field(default_factory=dict, description="fingerprint -> first seen")
    firing: dict[str, FiringSeries] = Field(default_factory=dict)


class DetectionState(_Model):
    triggers: dict[str, TriggerState] = Field(default_factory=dict)


class DetectionInput(_Model):
    """The schedule's action argument: the policy snapshot `tocsin up` registered. No URL, no secret."""

    policy: SharedPolicy


class DetectionResult(_Model):
    """One run's outcome; its `state` is the next run's starting point."""

    run: int = 0
    at: datetime | None = None
    state: DetectionState = Field(default_factory=DetectionState)
    triggers: int = 0
    evaluated: int = 0
    pending: int = 0
    firing: int = 0
    fired: int = 0
    resolved: int = 0
    # trigger id (or "prometheus", "intake", "state") -> what went wrong this run, shortened.
    errors: dict[str, str] = Field(default_factory=dict)


class IngestRequest(_Model):
    policy: SharedPolicy
    alerts: list[NormalizedAlert] = Field(min_length=1, max_length=HANDOFF_CHUNK)


class TriggerSpec(_Model):
    query: TriggerQuery
    duration: timedelta
    summary: str


class Transition(_Model):
    trigger: str
    fingerprint: str
    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    since: datetime
    summary: str
    value: str = ""


class RunPlan(_Model):
    # Pending and firing after this evaluation, before any transition is applied.
    state: DetectionState
    transitions: list[Transition] = Field(default_factory=list)
    evaluated: int = 0
    errors: dict[str, str] = Field(default_factory=dict)
