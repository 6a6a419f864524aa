"""The policy's bounds on what outsiders can make an incident hold, and when a burst becomes one storm.

Everything a sender posts ends up in some workflow's state. These knobs keep that state small enough for
a `status` query and a continue-as-new whatever arrives, and keep a burst of new incidents from becoming
a burst of pages (tocsin.policy.storm decides, workflows/storm_guard.py remembers).
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, model_validator

from tocsin.durations import Duration
from tocsin.policy.fields import Strict


class Limits(Strict):
    """How much one incident keeps. Beyond the caps it counts what it folded; the history keeps the rest."""

    # Alert records kept one per fingerprint; further fingerprints are counted, not kept.
    alerts_per_incident: int = Field(default=1000, ge=10, le=5000)
    # Timeline entries kept; the oldest noise (alerts, deliveries, syncs) is folded first, then the oldest.
    timeline_entries: int = Field(default=500, ge=50, le=2000)


# The service of the storm incident that pages for a burst: never a status-page component (its members are).
STORM_SERVICE = "storm"


class Storm(Strict):
    """More than `threshold` new incidents within `window` is a storm: one storm incident pages for the rest."""

    # 0 turns consolidation off: every new incident pages on its own.
    threshold: int = Field(default=20, ge=0, le=10_000)
    window: Duration = timedelta(minutes=5)

    @model_validator(mode="after")
    def _sane(self) -> Storm:
        if not timedelta(seconds=10) <= self.window <= timedelta(hours=1):
            raise ValueError("window must be between 10 seconds and 1 hour")
        return self

    @property
    def enabled(self) -> bool:
        return self.threshold > 0
