"""Which maintenance window holds an incident, without Temporal: weekly windows in their timezone (across
midnight and a daylight-saving change), labels that narrow a window, a person's own incident never held,
the quiet rule after a window ends, and the policy section's errors."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta
from typing import Any, cast

import pytest
from pydantic import ValidationError
from temporalio.client import Client

from activities.maintenance import MaintenanceActivities
from tocsin.cli.main import main
from tocsin.incident.contracts import AlertRecord, IncidentState
from tocsin.maintenance.contracts import LookupRequest, MaintenanceState, Window
from tocsin.maintenance.windows import holding, matches, remember, scheduled_next, scheduled_now
from tocsin.policy.maintenance import ScheduledWindow, Weekly
from tocsin.policy.schema import Policy

T0 = datetime(2026, 12, 5, 1, 30, tzinfo=UTC)  # a Saturday


def weekly(days: Any, start: time, hours: float, tz: str = "UTC", **more: Any) -> ScheduledWindow:
    return ScheduledWindow(
        name="nightly",
        service="checkout",
        weekly=Weekly(days=days, start=start, duration=timedelta(hours=hours), timezone=tz),
        reason="patching",
        **more,
    )


def state(service: str = "checkout", labels: dict[str, str] | None = None, **more: Any) -> IncidentState:
    return IncidentState(
        key="k", title="t", service=service, severity="sev1", labels=labels or {}, opened_at=T0, **more
    )


def window(ends_in: timedelta, **more: Any) -> Window:
    fields: dict[str, Any] = {
        "id": "mw-0000000a",
        "service": "checkout",
        "reason": "deploy",
        "by": "alice",
        "starts_at": T0 - timedelta(minutes=5),
        "ends_at": T0 + ends_in,
    }
    return Window.model_validate({**fields, **more})


def test_a_weekly_window_that_crosses_midnight_holds_on_the_next_day() -> None:
    # Friday 23:00 for 3 hours: still running at 01:30 on Saturday, over at 02:00.
    w = weekly(["fri"], time(23, 0), 3)
    running = scheduled_now(w, T0)
    assert running is not None and running.id == "policy:nightly" and running.source == "policy"
    assert running.starts_at == datetime(2026, 12, 4, 23, 0, tzinfo=UTC)
    assert running.ends_at == datetime(2026, 12, 5, 2, 0, tzinfo=UTC)
    assert scheduled_now(w, T0 + timedelta(minutes=30)) is None
    assert scheduled_next(w, T0 + timedelta(minutes=30)).starts_at == datetime(2026, 12, 11, 23, 0, tzinfo=UTC)


def test_a_weekly_window_follows_daylight_saving_time_in_its_timezone() -> None:
    w = weekly(["sun"], time(2, 30), 1, tz="Europe/Berlin")
    # 2026-03-29 is the spring-forward Sunday in Berlin: 02:30 does not exist, the window starts at 03:30
    # CEST (01:30Z), as a wall clock would; a week earlier 02:30 CET is 01:30Z too, a week later 00:30Z.
    assert scheduled_next(w, datetime(2026, 3, 22, 0, 0, tzinfo=UTC)).starts_at == datetime(
        2026, 3, 22, 1, 30, tzinfo=UTC
    )
    assert scheduled_next(w, datetime(2026, 3, 29, 0, 0, tzinfo=UTC)).starts_at == datetime(
        2026, 3, 29, 1, 30, tzinfo=UTC
    )
    assert scheduled_next(w, datetime(2026, 4, 5, 0, 0, tzinfo=UTC)).starts_at == datetime(
        2026, 4, 5, 0, 30, tzinfo=UTC
    )


def test_labels_narrow_a_window_and_never_widen_it() -> None:
    w = window(timedelta(hours=1), labels={"env": "prod"})
    assert matches(w, "checkout", {"env": "prod", "pod": "a"})
    assert not matches(w, "checkout", {"env": "staging"})
    assert not matches(w, "checkout", {})
    assert not matches(w, "payments", {"env": "prod"})


def test_holding_picks_the_window_that_ends_last_and_never_holds_a_persons_incident(default_policy: Policy) -> None:
    s = state()
    remember(s, window(timedelta(minutes=10)), 10)
    remember(s, window(timedelta(hours=2), id="mw-0000000b"), 10)
    held = holding(s, default_policy, T0)
    assert held is not None and held.id == "mw-0000000b"
    s.maintenance.exempt = True  # opened with `tocsin trigger`
    assert holding(s, default_policy, T0) is None


def test_after_the_window_only_a_firing_alert_releases_the_catch_up_page(default_policy: Policy) -> None:
    s = state()
    w = window(timedelta(minutes=10))
    remember(s, w, 10)
    s.maintenance.held = w
    later = T0 + timedelta(minutes=11)
    s.alerts = {"fp": AlertRecord(status="resolved", first_seen=T0, last_seen=T0)}
    assert holding(s, default_policy, later) == w  # quiet: no catch-up page for an alert that recovered
    s.alerts["fp"].status = "firing"
    assert holding(s, default_policy, later) is None  # it fires: the catch-up page goes out
    s.alerts = {}
    assert holding(s, default_policy, later) is None  # no alerts at all (a detector's incident): it pages


def test_remember_keeps_one_copy_per_window_and_a_bounded_number() -> None:
    s = state()
    for i in range(12):
        remember(s, window(timedelta(minutes=i + 1), id=f"mw-{i:08x}"), 10)
    remember(s, window(timedelta(hours=5), id="mw-00000003"), 10)  # told again: the later end wins
    ids = [w.id for w in s.maintenance.windows]
    assert len(ids) == 10 and ids.count("mw-00000003") == 1 and ids[-1] == "mw-00000003"


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        ({"days": ["sat"], "start": "02:00", "duration": "2 days"}, "duration must be between 1 minute and"),
        ({"days": ["sat", "sat"], "start": "02:00", "duration": "1h"}, "a day is listed twice"),
        ({"days": ["saturday"], "start": "02:00", "duration": "1h"}, "Input should be 'mon'"),
        ({"days": ["sat"], "start": 120, "duration": "1h"}, "write the time of day in quotes"),
        ({"days": ["sat"], "start": "02:00", "duration": "1h", "timezone": "Mars/Base"}, "unknown timezone"),
    ],
)
def test_the_policy_section_says_what_is_wrong(section: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        Weekly.model_validate(section)


def test_a_window_name_is_declared_once(default_policy: Policy) -> None:
    data = default_policy.model_dump(mode="json")
    every_saturday = {"days": ["sat"], "start": "02:00", "duration": "1h"}
    one = {"name": "nightly", "service": "checkout", "reason": "x", "weekly": every_saturday}
    data["maintenance"] = [one, one]
    with pytest.raises(ValidationError, match=r"maintenance\.1\.name: 'nightly' is declared twice"):
        Policy.model_validate(data)


class CountingRegistry:
    """A client whose registry answers one open window and counts how often it is asked."""

    def __init__(self) -> None:
        self.queries = 0

    def get_workflow_handle(self, workflow_id: str) -> CountingRegistry:
        return self

    async def query(self, name: str, result_type: type[MaintenanceState]) -> MaintenanceState:
        self.queries += 1
        await asyncio.sleep(0.01)
        now = datetime.now(UTC)
        return MaintenanceState(windows=[window(timedelta(hours=1), starts_at=now - timedelta(minutes=1))])


async def test_a_storm_of_lookups_asks_the_registry_once_a_second() -> None:
    registry = CountingRegistry()
    lookups = MaintenanceActivities(cast(Client, registry), fresh_for=0.2)
    asked = [LookupRequest(service="checkout"), LookupRequest(service="payments")] * 50
    answers = await asyncio.gather(*(lookups.lookup(request) for request in asked))
    assert registry.queries == 1  # a hundred new incidents at once: one query
    assert [len(a.windows) for a in answers[:2]] == [1, 0]  # each still gets only the windows that match it
    await asyncio.sleep(0.25)
    await lookups.lookup(LookupRequest(service="checkout"))
    assert registry.queries == 2  # a second later the answer is asked for again


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (
            ["start", "--service", "checkout", "--for", "9d", "--reason", "x"],
            "a window lasts between 1 minute and 1 week",
        ),
        (["start", "--service", "checkout", "--for", "9zz", "--reason", "x"], "--for 9zz: invalid duration '9zz'"),
        (["start", "--service", "a b", "--for", "1h", "--reason", "x"], "service: String should match pattern"),
        (
            ["start", "--service", "checkout", "--for", "1h", "--reason", "x", "--label", "env"],
            "tocsin: --label 'env': expected",
        ),
        (["end", "bogus"], "'bogus' is no window id (they look like mw-1a2b3c4d)"),
    ],
)
def test_bad_input_to_the_maintenance_commands_is_one_line_and_exit_2(
    argv: list[str], error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """As docs/maintenance.md says, and before anything connects to Temporal."""
    assert main(["maintenance", *argv]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("tocsin: ") and error in err and err.count("\n") == 1, err
