"""The policy's `intake:` and `detection:` sections: how received and detected alerts become incidents."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, model_validator

from tocsin.durations import Duration
from tocsin.policy.fields import Strict as _Strict
from tocsin.policy.limits import Storm


class Intake(_Strict):
    """How received alerts become incidents: grouping, severity, and when resolved alerts close one."""

    # Alerts with equal values of these labels are one incident (a PagerDuty dedup_key overrides).
    group_by: list[str] = Field(default_factory=lambda: ["alertname", "service", "environment"], min_length=1)
    severity_label: str = "severity"
    # Label value -> severity, for alerts whose response workflow does not set one.
    severity_map: dict[str, str] = Field(
        default_factory=lambda: {
            "critical": "sev1",
            "page": "sev1",
            "error": "sev2",
            "high": "sev2",
            "warning": "sev3",
            "medium": "sev3",
            "info": "sev4",
            "low": "sev4",
        }
    )
    # Once every alert of an incident has resolved, it resolves itself after this quiet period. A PagerDuty
    # `resolve` event is not a quiet alert but an explicit resolution: it resolves at once, acknowledged or not.
    flap_window: Duration = timedelta(minutes=5)
    # An acknowledged incident stays open for its humans to resolve, even when its alerts clear.
    hold_when_acknowledged: bool = True
    # A burst of new incidents pages once, through a storm incident (tocsin.storm.consolidation).
    storm: Storm = Field(default_factory=Storm)


class Detection(_Strict):
    """Tocsin's own detector: how often it evaluates the triggers' PromQL against TOCSIN_PROMETHEUS_URL."""

    # Each run of the `tocsin-detector` schedule evaluates every named trigger's expr once.
    interval: Duration = timedelta(seconds=30)
    # Per query, in Prometheus (its `timeout` parameter) and on the wire.
    query_timeout: Duration = timedelta(seconds=10)
    # Series beyond this many per trigger are not tracked (the lowest fingerprints are kept, stably).
    max_series_per_trigger: int = Field(default=1000, ge=1, le=1000)

    @model_validator(mode="after")
    def _sane(self) -> Detection:
        if self.interval < timedelta(seconds=1):
            raise ValueError("interval must be at least 1 second")
        if not timedelta(seconds=1) <= self.query_timeout <= timedelta(minutes=2):
            raise ValueError("query_timeout must be between 1 second and 2 minutes")
        return self
