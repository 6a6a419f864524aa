"""The policy's `heartbeats:` section: a dead man's switch per name (workflows/heartbeat.py keeps each one).

A sender (Alertmanager's Watchdog, a cron job) pings `POST /api/v1/heartbeats/<name>` every `interval`; when
no ping arrives within `interval + grace`, an incident opens for `service` at `severity`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Annotated

from pydantic import Field, model_validator

from tocsin.durations import Duration
from tocsin.policy.fields import Strict

# Used in a workflow id (heartbeat-<name>) and a URL path: no spaces, slashes or dots to escape.
HEARTBEAT_NAME = r"^[a-z0-9][a-z0-9_-]{0,62}$"
SERVICE_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$"
# Shorter than a few seconds would page on ordinary network jitter; longer than a week is no heartbeat.
MIN_INTERVAL = timedelta(seconds=10)
MAX_INTERVAL = timedelta(days=7)
MAX_GRACE = timedelta(days=1)


class Heartbeat(Strict):
    interval: Duration = Field(description="how often the sender pings")
    grace: Duration = Field(default=timedelta(seconds=30), description="tolerated lateness past the interval")
    service: str = Field(pattern=SERVICE_NAME)
    severity: str = Field(default="sev2", pattern=r"^sev[1-9]$")

    @model_validator(mode="after")
    def _bounds(self) -> Heartbeat:
        if not MIN_INTERVAL <= self.interval <= MAX_INTERVAL:
            raise ValueError(f"interval must be between {MIN_INTERVAL} and {MAX_INTERVAL}")
        if not timedelta(0) <= self.grace <= MAX_GRACE:
            raise ValueError(f"grace must be between 0 and {MAX_GRACE}")
        return self

    @property
    def deadline(self) -> timedelta:
        return self.interval + self.grace


Heartbeats = dict[Annotated[str, Field(pattern=HEARTBEAT_NAME)], Heartbeat]


def heartbeat_problems(heartbeats: Mapping[str, Heartbeat], severities: Mapping[str, object]) -> Iterator[str]:
    """Each heartbeat whose severity the policy does not define: it would open an incident nobody can triage."""
    for name, beat in heartbeats.items():
        if beat.severity not in severities:
            yield f"heartbeats.{name}.severity: unknown severity {beat.severity!r} (defined: {', '.join(severities)})"
