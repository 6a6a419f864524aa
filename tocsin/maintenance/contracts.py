"""What maintenance windows pass around: the registry's updates and query, the incidents' signal and lookup.

One durable registry (MaintenanceWorkflow, id `tocsin-maintenance`) holds the one-off windows people start;
windows the policy declares are computed from the policy itself. An incident asks at its opening which
windows hold it (activity `maintenance_lookup`), and the registry tells open incidents of a service when a
window starts or ends (signal `maintenance`). Everything here is bounded: it travels through histories.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tocsin.durations import format_duration

MAINTENANCE_WORKFLOW_ID = "tocsin-maintenance"
SERVICE_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$"
WINDOW_ID = r"^(mw-[0-9a-f]{8}|policy:[a-z0-9][a-z0-9_-]{0,62})$"
# A one-off window is a deploy or a planned failover: minutes to hours. Longer belongs in the policy's
# weekly schedule, or is an outage of monitoring that deserves a page.
MIN_DURATION = timedelta(minutes=1)
MAX_DURATION = timedelta(days=7)
MAX_LABELS = 10
LABEL_MAX = 200
REASON_MAX = 200
BY_MAX = 100
# Windows open at once in the registry, and windows one incident remembers.
MAX_ACTIVE = 100
MAX_PER_INCIDENT = 10


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _bounded_labels(labels: dict[str, str]) -> dict[str, str]:
    if len(labels) > MAX_LABELS:
        raise ValueError(f"at most {MAX_LABELS} labels")
    for key, value in labels.items():
        if not key or len(key) > LABEL_MAX or len(value) > LABEL_MAX:
            raise ValueError(f"label {key[:40]!r}: keys of 1 to {LABEL_MAX} characters, values up to {LABEL_MAX}")
    return labels


class Window(_Model):
    """One window: what it holds (a service, and labels the incident must carry), why, and until when."""

    id: str = Field(pattern=WINDOW_ID)
    service: str = Field(pattern=SERVICE_NAME)
    labels: dict[str, str] = Field(default_factory=dict)
    reason: str = Field(max_length=REASON_MAX)
    by: str = Field(max_length=BY_MAX)
    starts_at: datetime
    ends_at: datetime
    source: Literal["cli", "policy"] = "cli"
    # Set when it was ended early (`tocsin maintenance end`); ends_at then says when.
    ended_by: str | None = Field(default=None, max_length=BY_MAX)

    _labels = field_validator("labels")(_bounded_labels)

    def describe(self) -> str:
        """How the timeline names it: 'maintenance window mw-1a2b3c4d (deploy v42, by alice, until 14:00Z)'."""
        return f"maintenance window {self.id} ({self.reason}, by {self.by}, until {self.ends_at:%H:%M}Z)"


class StartWindow(_Model):
    """Update `start_window`: a person starts a one-off window from now for `duration`."""

    service: str = Field(pattern=SERVICE_NAME)
    labels: dict[str, str] = Field(default_factory=dict)
    duration: timedelta
    reason: str = Field(min_length=1, max_length=REASON_MAX)
    by: str = Field(min_length=1, max_length=BY_MAX)

    _labels = field_validator("labels")(_bounded_labels)

    @model_validator(mode="after")
    def _duration(self) -> StartWindow:
        if not MIN_DURATION <= self.duration <= MAX_DURATION:
            span = f"{format_duration(MIN_DURATION)} and {format_duration(MAX_DURATION)}"
            raise ValueError(f"a window lasts between {span} (got {format_duration(self.duration)})")
        return self


class EndWindow(_Model):
    """Update `end_window`: end a one-off window now; incidents it held page their catch-up."""

    id: str = Field(pattern=WINDOW_ID)
    by: str = Field(min_length=1, max_length=BY_MAX)


class MaintenanceState(_Model):
    """The registry's state, as the `windows` query returns it and continue-as-new carries it."""

    windows: list[Window] = Field(default_factory=list, max_length=MAX_ACTIVE)
    started: int = 0
    ended: int = 0


class WindowNotice(_Model):
    """Signal `maintenance` to an open incident: a window of its service started, or ended."""

    window: Window
    ended: bool = False


class LookupRequest(_Model):
    """Activity `maintenance_lookup`: which one-off windows hold a new incident of this service and labels."""

    service: str
    labels: dict[str, str] = Field(default_factory=dict)


class LookupAnswer(_Model):
    windows: list[Window] = Field(default_factory=list)


class NotifyRequest(_Model):
    """Activity `maintenance_notify`: tell the open incidents of the window's service it started or ended."""

    notice: WindowNotice


class NotifyResult(_Model):
    told: int
    # Open incidents beyond the bound: they wake on their own at the window's end (or were not held).
    skipped: int = 0


class IncidentMaintenance(_Model):
    """What an incident knows of maintenance: the one-off windows it was told of, and what it held."""

    windows: list[Window] = Field(default_factory=list, max_length=MAX_PER_INCIDENT)
    # Opened by a person (`tocsin trigger`): a human asking for an incident gets its pages, window or not.
    exempt: bool = False
    # The window the timeline last said holds the pages (None while nothing holds them).
    held: Window | None = None
    # When a window that held the incident from its opening (before any page) released it: its response
    # targets count from there, since nobody could respond before the catch-up page.
    released_at: datetime | None = None
    # The timeline said the window ended with nothing firing (so no catch-up page yet).
    quiet_noted: bool = False
    # Held from its opening: it asks the storm guard when the window lets it page, not before, so a deploy's
    # burst of incidents becomes one storm at the window's end, not one catch-up page each.
    storm_deferred: bool = False
