"""What the runbook guard (workflows/runbook_guard.py) takes and answers: one model per update and signal."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

GUARD_WORKFLOW_ID = "tocsin-runbook-guard"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AcquireRequest(_Model):
    """A runbook run asks to act on a service. `holder` is its workflow id; asking again is idempotent."""

    service: str
    runbook: str
    holder: str
    # The hold lapses after this: a run that vanished without releasing never blocks a service forever.
    lease: timedelta = Field(gt=timedelta(0))
    max_runs: int | None = Field(default=None, ge=1)
    per: timedelta | None = None


class AcquireAnswer(_Model):
    granted: bool
    reason: str
    held_by: str | None = None


class ReleaseRequest(_Model):
    service: str
    holder: str


class Hold(_Model):
    holder: str
    runbook: str
    since: datetime
    until: datetime


class GuardState(_Model):
    """Carried across continue-as-new: who holds which service, and when each runbook last started."""

    holds: dict[str, Hold] = Field(default_factory=dict)
    starts: dict[str, list[datetime]] = Field(default_factory=dict)
