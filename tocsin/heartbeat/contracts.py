"""What a heartbeat's workflow carries: its input, pings, status, and the requests to its activities. Pydantic
models in HeartbeatWorkflow's history; ids and names pinned here."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

HEARTBEAT_WORKFLOW = "HeartbeatWorkflow"
MISSED_ALERTNAME = "TocsinHeartbeatMissed"
RESOLVED_BY = "tocsin"


def heartbeat_workflow_id(name: str) -> str:
    return f"heartbeat-{name}"


def heartbeat_incident_key(name: str, n: int) -> str:
    return f"heartbeat-{name}-{n}"


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Ping(_Message):
    """One ping; small on purpose: a heartbeat's history grows by one of these per interval."""

    source: str = Field(default="receiver", max_length=100)


class HeartbeatInput(_Message):
    """The heartbeat's declaration (from the receiver's policy) and what a continued run carries over."""

    name: str
    interval: timedelta
    grace: timedelta
    service: str
    severity: str
    pings: int = 0
    misses: int = 0
    last_ping: datetime | None = None
    open_key: str | None = None

    @property
    def deadline(self) -> timedelta:
        return self.interval + self.grace


class HeartbeatStatus(_Message):
    name: str
    state: Literal["waiting", "ok", "missed"]
    last_ping: datetime | None
    due: datetime | None
    pings: int
    misses: int
    open_incident: str | None


class MissedRequest(_Message):
    name: str
    key: str
    service: str
    severity: str
    deadline: timedelta
    last_ping: datetime | None
    missed_at: datetime


class RecoveredRequest(_Message):
    name: str
    key: str
