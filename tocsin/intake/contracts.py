"""One alert model for every source: Alertmanager, Grafana, PagerDuty Events v2 and the generic JSON API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

AlertSource = Literal["alertmanager", "grafana", "pagerduty", "generic", "detector"]


class NormalizedAlert(BaseModel):
    """What every source becomes before the policy routes it. Carries no credentials, ever."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: AlertSource
    status: Literal["firing", "resolved"]
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    summary: str = ""
    fingerprint: str = Field(min_length=1, max_length=200)
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    # PagerDuty Events v2: the sender's own incident key, and acknowledge as a third action.
    dedup_key: str | None = None
    acknowledge: bool = False
    acknowledged_by: str | None = None
    # An explicit resolution (PagerDuty's resolve event): the incident resolves at once, acknowledged or not,
    # instead of waiting out the flap window as a quiet alert does.
    resolve_now: bool = False
    # When Tocsin had the alert, if the caller knows better than intake's own clock: the detector's run that
    # saw it fire. None: when intake planned it (the receiver plans a payload as soon as it has validated it).
    received_at: datetime | None = None


class IngestResult(BaseModel):
    """The receiver's 202 body: which incidents the payload reached, once Temporal has accepted the work."""

    keys: list[str]
    alerts: int
    opened_or_updated: int
    # Only when the caller asked to skip what cannot be ingested (the detector): each skipped alert and why.
    skipped: list[str] | None = None


class TemporalUnavailable(Exception):
    """Temporal did not accept the work: answer 503 so the sender retries (Alertmanager retries only 5xx)."""


class IntakeRefused(Exception):
    """A payload that passed its schema but that triage cannot place: refused whole, nothing was sent."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__(errors[0] if errors else "the payload cannot be triaged")
        self.errors = errors


TemporalRefusal = Literal["too_large", "invalid", "failed"]


class TemporalRefused(Exception):
    """Temporal refused the work for good: sending it again is refused again, so it is never a 503.

    `kind`: too_large (a payload over Temporal's size limits), invalid (the request itself, e.g.
    INVALID_ARGUMENT), failed (the receiver's side: PERMISSION_DENIED, a missing namespace, a server error).
    """

    def __init__(self, message: str, kind: TemporalRefusal) -> None:
        super().__init__(message)
        self.kind: TemporalRefusal = kind
