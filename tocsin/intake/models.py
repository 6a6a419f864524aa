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


class IngestResult(BaseModel):
    """The receiver's 202 body: which incidents the payload reached, once Temporal has accepted the work."""

    keys: list[str]
    alerts: int
    opened_or_updated: int


class TemporalUnavailable(Exception):
    """Temporal did not accept the work: answer 503 so the sender retries (Alertmanager retries only 5xx)."""
