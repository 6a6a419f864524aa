"""The incident's impact, from its own record and the metric series gathered: pure and deterministic.

Durations come from the incident's state, measured from the first alert (first page / acknowledged /
mitigated / resolved), not from the workflow's opening, which a busy worker can start late. The worst values
come from the series the metrics source summarised, by SLI name: `error_rate` (a ratio, highest), the
lowest `availability` (a ratio), the highest `latency_p95` (seconds). An SLO breach is any series of a
policy SLI whose worst value is past its objective, said in words. Users and cost are the incident's
duration in minutes times the policy's per-minute figures, when the policy has them.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from tocsin.incident.contracts import IncidentState
from tocsin.policy.postmortem import PostmortemPolicy
from tocsin.postmortem.contracts import Impact, SeriesSummary
from tocsin.postmortem.timeline import as_utc

_SERVICE_LABEL = re.compile(r"""(?:^|[{,\s])service\s*=\s*["']?([^"',}\s]+)""")


def service_of(labels: str) -> str | None:
    """The `service` label of a series' label string (`{service="checkout",code="5xx"}`), if it has one."""
    match = _SERVICE_LABEL.search(labels)
    return match.group(1) if match else None


def _is_ratio(name: str, objective: float) -> bool:
    return "latency" not in name and "duration" not in name and 0 < objective <= 1


def format_value(name: str, value: float, objective: float) -> str:
    """A value as a reader expects it: ratios as percentages, latencies in seconds, anything else plain."""
    if _is_ratio(name, objective):
        return f"{_plain(value * 100)}%"
    if "latency" in name or "duration" in name:
        return f"{_plain(value)} s"
    return _plain(value)


def _plain(value: float) -> str:
    """At most three decimals, no trailing zeros: 3.4, 99.95, 1, 12000."""
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _since(incident: IncidentState, at: datetime | None) -> timedelta | None:
    if at is None:
        return None
    return max(as_utc(at) - as_utc(incident.clock_start), timedelta(0))


def time_to_first_page(incident: IncidentState) -> timedelta | None:
    """From the first alert to the first page a provider took; None if nobody was paged (or paging was held
    for a storm, whose own incident paged instead)."""
    return _since(incident, incident.first_paged_at)


def _worst(series: list[SeriesSummary], name: str, higher_is_worse: bool) -> float | None:
    peaks = [s.peak for s in series if s.name == name and s.peak is not None]
    if not peaks:
        return None
    return max(peaks) if higher_is_worse else min(peaks)


def slo_breaches(series: list[SeriesSummary], settings: PostmortemPolicy) -> list[str]:
    """'error_rate peaked at 3.4% against an objective of 1%' for each policy SLI whose worst value crossed it."""
    breaches: list[str] = []
    for name, sli in settings.slis.items():
        higher = sli.worse_is == "higher"
        worst = _worst(series, name, higher)
        if worst is None or (worst <= sli.objective if higher else worst >= sli.objective):
            continue
        verb = "peaked at" if higher else "fell to"
        breaches.append(
            f"{name} {verb} {format_value(name, worst, sli.objective)} "
            f"against an objective of {format_value(name, sli.objective, sli.objective)}"
        )
    return breaches


def compute_impact(incident: IncidentState, series: list[SeriesSummary], settings: PostmortemPolicy) -> Impact:
    resolved = incident.resolved_at
    if resolved is None:  # not resolved (a post-mortem is only started on resolution): the last thing recorded
        resolved = max((entry.at for entry in incident.timeline), key=as_utc, default=incident.opened_at)
    duration = max(as_utc(resolved) - as_utc(incident.clock_start), timedelta(0))

    services = [incident.service]
    for summary in series:
        service = service_of(summary.labels)
        if service and service not in services:
            services.append(service)

    minutes = duration.total_seconds() / 60
    costs = settings.impact
    users = None if costs.users_per_minute is None else round(minutes * costs.users_per_minute)
    cost = None if costs.cost_per_minute is None else round(minutes * costs.cost_per_minute, 2)

    return Impact(
        duration=duration,
        time_to_first_page=time_to_first_page(incident),
        time_to_acknowledge=_since(incident, incident.acknowledged_at),
        time_to_mitigate=_since(incident, incident.mitigated_at),
        time_to_resolve=_since(incident, incident.resolved_at),
        peak_error_rate=_worst(series, "error_rate", higher_is_worse=True),
        lowest_availability=_worst(series, "availability", higher_is_worse=False),
        worst_latency_p95=_worst(series, "latency_p95", higher_is_worse=True),
        slo_breaches=slo_breaches(series, settings),
        services=services,
        affected_users=users,
        estimated_cost=cost,
    )
