"""The policy's `maintenance:` section: windows that recur every week, in a timezone.

    maintenance:
      - name: weekly-db-patching
        service: checkout
        labels: {env: prod}
        weekly: {days: [sat], start: "02:00", duration: 2 hours, timezone: Europe/Berlin}
        reason: OS patching of the checkout database

While one matches an incident, the incident records everything and pages nobody; when it ends, an incident
still firing pages once (tocsin.maintenance.windows decides). One-off windows are started with
`tocsin maintenance start` and live in a workflow, not here.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, model_validator

from tocsin.durations import Duration
from tocsin.policy.fields import Strict, Weekday
from tocsin.policy.roster_schema import TimeOfDay, TimeZoneName

WINDOW_NAME = r"^[a-z0-9][a-z0-9_-]{0,62}$"
SERVICE_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$"
# A window that lasts a week would hold every page forever; a planned one fits in a day.
MAX_SCHEDULED = timedelta(days=1)
MAX_LABELS = 10
LABEL_MAX = 200
REASON_MAX = 200


class Weekly(Strict):
    days: list[Weekday] = Field(min_length=1, max_length=7)
    start: TimeOfDay = Field(description="wall-clock time in `timezone` (daylight saving time followed)")
    duration: Duration
    timezone: TimeZoneName = "UTC"

    @model_validator(mode="after")
    def _bounds(self) -> Weekly:
        if not timedelta(minutes=1) <= self.duration <= MAX_SCHEDULED:
            raise ValueError(f"duration must be between 1 minute and {MAX_SCHEDULED}")
        if len(set(self.days)) != len(self.days):
            raise ValueError("days: a day is listed twice")
        return self


class ScheduledWindow(Strict):
    name: str = Field(pattern=WINDOW_NAME)
    service: str = Field(pattern=SERVICE_NAME)
    # Every label here must be on the incident for the window to hold it: narrower, never wider.
    labels: dict[str, str] = Field(default_factory=dict, max_length=MAX_LABELS)
    weekly: Weekly
    reason: str = Field(min_length=1, max_length=REASON_MAX)

    @model_validator(mode="after")
    def _label_sizes(self) -> ScheduledWindow:
        for key, value in self.labels.items():
            if not key or len(key) > LABEL_MAX or len(value) > LABEL_MAX:
                raise ValueError(f"labels.{key[:40]}: keys of 1 to {LABEL_MAX} characters, values up to {LABEL_MAX}")
        return self


def window_problems(windows: list[ScheduledWindow]) -> list[str]:
    """Names must be unique: a window is named on the timeline and in `tocsin maintenance list`."""
    seen: set[str] = set()
    problems = []
    for i, window in enumerate(windows):
        if window.name in seen:
            problems.append(f"maintenance.{i}.name: {window.name!r} is declared twice")
        seen.add(window.name)
    return problems
