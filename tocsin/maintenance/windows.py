"""Which maintenance window holds an incident's pages now: pure functions of (incident, policy, now).

A window holds an incident of its service that carries every label the window names. One-off windows come
from the registry (the incident keeps those it was told of); weekly ones are computed from the incident's
own policy snapshot, in their timezone, so daylight saving time moves them with the wall clock. After its
last window ends, an incident that still has alerts but none firing stays held: its catch-up page waits
for an alert to fire again, and auto-resolution closes it otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from tocsin.incident.contracts import IncidentState
from tocsin.maintenance.contracts import Window
from tocsin.policy.fields import WEEKDAYS
from tocsin.policy.maintenance import ScheduledWindow
from tocsin.policy.schema import Policy

POLICY_BY = "policy"


def matches(window: Window | ScheduledWindow, service: str, labels: Mapping[str, str]) -> bool:
    return window.service == service and all(labels.get(k) == v for k, v in window.labels.items())


def live(window: Window, now: datetime) -> bool:
    return window.starts_at <= now < window.ends_at


def _occurrences(scheduled: ScheduledWindow, around: datetime, days: Iterable[int]) -> list[Window]:
    """The window's occurrences that start on the local days `around + d` for each d."""
    weekly = scheduled.weekly
    zone = ZoneInfo(weekly.timezone)
    local_today = around.astimezone(zone).date()
    found = []
    for offset in days:
        day = local_today + timedelta(days=offset)
        if WEEKDAYS[day.weekday()] not in weekly.days:
            continue
        # Wall-clock start in the window's zone; a start in a spring-forward gap lands an hour later, as a
        # person's alarm clock would.
        starts = datetime.combine(day, weekly.start, tzinfo=zone).astimezone(UTC)
        found.append(
            Window(
                id=f"policy:{scheduled.name}",
                service=scheduled.service,
                labels=dict(scheduled.labels),
                reason=scheduled.reason,
                by=POLICY_BY,
                starts_at=starts,
                ends_at=starts + weekly.duration,
                source="policy",
            )
        )
    return found


def scheduled_now(scheduled: ScheduledWindow, now: datetime) -> Window | None:
    """The occurrence of a weekly window that covers `now`, if any (one lasts a day at most: yesterday's may
    still run past midnight)."""
    for window in _occurrences(scheduled, now, (-1, 0)):
        if live(window, now):
            return window
    return None


def scheduled_next(scheduled: ScheduledWindow, now: datetime) -> Window:
    """The occurrence running now, else the next to start (within the coming week: every window has a day)."""
    current = scheduled_now(scheduled, now)
    if current is not None:
        return current
    upcoming = [w for w in _occurrences(scheduled, now, range(8)) if w.starts_at > now]
    return min(upcoming, key=lambda w: w.starts_at)


def live_windows(state: IncidentState, policy: Policy, now: datetime) -> list[Window]:
    """Every window that matches the incident and runs now, one-off and scheduled."""
    found = [w for w in state.maintenance.windows if live(w, now) and matches(w, state.service, state.labels)]
    for scheduled in policy.maintenance:
        if matches(scheduled, state.service, state.labels):
            window = scheduled_now(scheduled, now)
            if window is not None:
                found.append(window)
    return found


def holding(state: IncidentState, policy: Policy, now: datetime) -> Window | None:
    """The window that holds the incident's pages now, or None. Of several, the one that ends last: the pages
    wait for all of them."""
    record = state.maintenance
    if record.exempt or state.status == "resolved":
        return None
    running = live_windows(state, policy, now)
    if running:
        return max(running, key=lambda w: w.ends_at)
    if record.held is not None and state.alerts and not any(a.status == "firing" for a in state.alerts.values()):
        return record.held  # ended, but nothing fires: no catch-up page for an alert that recovered meanwhile
    return None


def hold_ends_at(window: Window, now: datetime) -> datetime | None:
    """When the loop must look again on its own: the window's end, unless it ended (then an alert wakes it)."""
    return window.ends_at if window.ends_at > now else None


def remember(state: IncidentState, window: Window, limit: int) -> None:
    """Keep what the registry told: a repeat replaces, an end shortens; the oldest ended ones go first."""
    kept = [w for w in state.maintenance.windows if w.id != window.id]
    kept.append(window)
    kept.sort(key=lambda w: (w.ends_at, w.id))
    del kept[: max(len(kept) - limit, 0)]
    state.maintenance.windows = kept
