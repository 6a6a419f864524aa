"""Inputs of the incident's updates. `request_id` makes a retried call land once."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from tocsin.incident.contracts import IncidentStatusValue


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")

    by: str = Field(min_length=1, max_length=200)
    request_id: str | None = Field(default=None, max_length=200)


class AcknowledgeRequest(_Request):
    pass


class EscalateRequest(_Request):
    reason: str = Field(default="", max_length=2000)


class ResolveRequest(_Request):
    summary: str = Field(default="", max_length=10000)


class MitigateRequest(_Request):
    summary: str = Field(default="", max_length=10000)


class AnnotateRequest(_Request):
    text: str = Field(min_length=1, max_length=10000)


class SetSeverityRequest(_Request):
    severity: str
    reason: str = Field(default="", max_length=2000)


class UpdateResult(BaseModel):
    """What every update answers: enough for a CLI line, not the whole incident."""

    key: str
    status: IncidentStatusValue
    severity: str
    escalation_level: int
    message: str
