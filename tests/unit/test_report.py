"""`tocsin report`'s figures, checked by hand: median and nearest-rank p90, out of hours in each person's own
timezone (daylight saving included), and MTTA/MTTR from the incident's first alert, as the post-mortem."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from tocsin.incident.contracts import IncidentState, TimelineEntry
from tocsin.policy.roster_schema import WorkingHours
from tocsin.policy.schema import Policy
from tocsin.reporting.facts import incident_facts
from tocsin.reporting.gather import window_query
from tocsin.reporting.hours import out_of_hours
from tocsin.reporting.model import IncidentFacts, PageFact
from tocsin.reporting.stats import median, p90
from tocsin.reporting.summary import build_report

# A Monday in Berlin's winter time (UTC+1) and the Monday after its clocks went forward (UTC+2, 2025-03-30).
WINTER_MONDAY = datetime(2025, 3, 24, 7, 30, tzinfo=UTC)
SUMMER_MONDAY = datetime(2025, 3, 31, 7, 30, tzinfo=UTC)


# --- median and p90 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [([], None), ([5.0], 5.0), ([3.0, 1.0, 2.0], 2.0), ([1.0, 3.0, 2.0, 4.0], 2.5), ([60.0, 600.0], 330.0)],
)
def test_median_is_the_middle_or_the_mean_of_the_two_middle(values: list[float], expected: float | None) -> None:
    assert median(values) == expected


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], None),
        ([42.0], 42.0),  # ceil(0.9) = 1st
        ([600.0, 60.0, 120.0], 600.0),  # ceil(2.7) = 3rd of 60, 120, 600
        ([float(v) for v in range(1, 11)], 9.0),  # ceil(9.0) = 9th: not 10 (0.9 * 10 is 9.000000000000002)
        ([float(v) for v in range(1, 12)], 10.0),  # ceil(9.9) = 10th
        ([float(v) for v in range(20, 0, -1)], 18.0),  # ceil(18.0) = 18th, whatever the input order
    ],
)
def test_p90_is_the_nearest_rank(values: list[float], expected: float | None) -> None:
    assert p90(values) == expected


# --- out of hours ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "timezone", "expected"),
    [
        # Same UTC wall time, either side of Berlin's spring-forward: 08:30 CET (out), 09:30 CEST (in).
        (WINTER_MONDAY, "Europe/Berlin", True),
        (SUMMER_MONDAY, "Europe/Berlin", False),
        # New York falls back on 2025-11-02: 22:30 UTC is 18:30 EDT (out) one Monday, 17:30 EST (in) the next.
        (datetime(2025, 10, 27, 22, 30, tzinfo=UTC), "America/New_York", True),
        (datetime(2025, 11, 3, 22, 30, tzinfo=UTC), "America/New_York", False),
        # The edges: 09:00 is in hours, 18:00 is not, 17:59:59 is.
        (datetime(2025, 6, 2, 7, 0, tzinfo=UTC), "Europe/Berlin", False),
        (datetime(2025, 6, 2, 16, 0, tzinfo=UTC), "Europe/Berlin", True),
        (datetime(2025, 6, 2, 15, 59, 59, tzinfo=UTC), "Europe/Berlin", False),
        # One instant, two people: 09:00 in Berlin, 03:00 in New York.
        (datetime(2025, 6, 2, 7, 0, tzinfo=UTC), "America/New_York", True),
        # A weekend, at noon: out. Sunday 23:30 UTC is Monday 09:30 in Sydney: in hours, by the person's clock.
        (datetime(2025, 6, 7, 10, 0, tzinfo=UTC), "Europe/Berlin", True),
        (datetime(2025, 6, 8, 23, 30, tzinfo=UTC), "Australia/Sydney", False),
        # A name the zone database does not know reads as UTC.
        (datetime(2025, 6, 2, 8, 0, tzinfo=UTC), "Mars/Olympus_Mons", True),
    ],
)
def test_out_of_hours_is_on_the_persons_own_clock(at: datetime, timezone: str, expected: bool) -> None:
    assert out_of_hours(at, timezone) is expected


def test_out_of_hours_follows_the_persons_own_working_week() -> None:
    # Someone in Tel Aviv who works Sunday to Thursday, 08:00 to 17:00, on their clock (UTC+2 in December).
    week = WorkingHours.model_validate({"days": ["sun", "mon", "tue", "wed", "thu"], "start": "08:00", "end": "17:00"})
    sunday_morning = datetime(2026, 12, 6, 7, 0, tzinfo=UTC)  # 09:00 local on a Sunday
    assert out_of_hours(sunday_morning, "Asia/Jerusalem", week) is False
    assert out_of_hours(sunday_morning, "Asia/Jerusalem") is True  # the default week has no Sunday
    friday_noon = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
    assert out_of_hours(friday_noon, "Asia/Jerusalem", week) is True
    assert out_of_hours(datetime(2026, 12, 7, 14, 59, tzinfo=UTC), "Asia/Jerusalem", week) is False  # 16:59
    assert out_of_hours(datetime(2026, 12, 7, 15, 0, tzinfo=UTC), "Asia/Jerusalem", week) is True  # 17:00
    with pytest.raises(ValueError, match="start 18:00 must be before end 09:00"):
        WorkingHours.model_validate({"start": "18:00", "end": "09:00"})


# --- one incident's figures --------------------------------------------------------------------------------------


def _page(at: datetime, level: int, who: str, channel: str, address: str, ok: bool = True) -> list[TimelineEntry]:
    """A page of one person and its receipt, as workflows/incident/escalation.py and deliveries.py record them."""
    receipt = TimelineEntry(at=at, kind="delivered", text=f"{channel} → {address}: outbox-{level}")
    if not ok:
        receipt = TimelineEntry(at=at, kind="delivery_failed", text=f"{channel} → {address}: refused")
    return [TimelineEntry(at=at, kind="page", text=f"level {level}: paging {who} via {channel} (attempt 1/3)"), receipt]


def _incident(key: str, start: datetime, **fields: object) -> IncidentState:
    return IncidentState.model_validate(
        {"key": key, "title": "Checkout down", "service": "checkout", "severity": "sev1"}
        | {"opened_at": start + timedelta(seconds=3), "first_alert_at": start}
        | fields
    )


def test_mtta_and_mttr_run_from_the_first_alert_and_pages_are_the_deliveries_taken(default_policy: Policy) -> None:
    start = WINTER_MONDAY - timedelta(seconds=5)
    action_at = WINTER_MONDAY + timedelta(minutes=1)
    synced_at = WINTER_MONDAY + timedelta(minutes=4)
    timeline = [
        *_page(WINTER_MONDAY, 1, "alice", "pagerduty", "PALICE1"),  # 08:30 in Berlin: out of hours
        # An automatic action pages bob too (03:31 in New York); its war-room post and email are not pages.
        TimelineEntry(at=action_at, kind="delivered", text="pagerduty → PBOB002: outbox-action"),
        TimelineEntry(at=action_at, kind="delivered", text="slack → U0ALICE01: outbox-dm"),
        TimelineEntry(at=action_at, kind="delivered", text="email → alice@company.com: outbox-mail"),
        TimelineEntry(at=action_at, kind="action", text="trigger_emergency_response: pagerduty emergency_response"),
        # A follow-up updates alice's PagerDuty incident: not a new page.
        TimelineEntry(at=synced_at, kind="sync", text="pagerduty PALICE1: triggered → acknowledged"),
        TimelineEntry(at=synced_at, kind="sync", text="slack #inc: triggered/sev1 → acknowledged/sev1"),
        TimelineEntry(at=synced_at, kind="delivered", text="slack → #inc: outbox-sync-1"),
        TimelineEntry(at=synced_at, kind="delivered", text="pagerduty → PALICE1: outbox-sync-2"),
        *_page(WINTER_MONDAY + timedelta(minutes=5), 2, "bob", "phone", "+12025550102", ok=False),
        *_page(SUMMER_MONDAY, 2, "carol", "pagerduty", "PCAROL3"),  # a week on, 09:30 in Berlin: in hours
    ]
    state = _incident(
        "checkout-1",
        start,
        status="resolved",
        acknowledged_at=start + timedelta(minutes=3, seconds=5),
        resolved_at=start + timedelta(minutes=15),
        escalation_level=1,
        timeline=timeline,
    )
    facts = incident_facts(state, default_policy)
    assert facts.clock_start == start
    assert facts.mtta_seconds == 185.0  # acknowledged - first alert, not - opening (which came 3 s later)
    assert facts.mttr_seconds == 900.0
    assert facts.escalation_depth == 2  # the deepest level paged, though the state's level says 1
    # bob's phone call failed: it reached nobody and is not a page.
    assert [(p.person, p.level, p.timezone, p.out_of_hours) for p in facts.pages] == [
        ("alice", 1, "Europe/Berlin", True),
        ("bob", 1, "America/New_York", True),
        ("carol", 2, "Europe/Berlin", False),
    ]


def test_a_page_to_an_address_the_roster_no_longer_knows_counts_in_utc(default_policy: Policy) -> None:
    state = _incident("gone-1", SUMMER_MONDAY, timeline=_page(SUMMER_MONDAY, 1, "primary_oncall", "sms", "+15550000"))
    [page] = incident_facts(state, default_policy).pages
    assert (page.person, page.timezone, page.out_of_hours) == ("+15550000", "UTC", True)  # 07:30 UTC


def test_an_incident_without_a_first_alert_is_measured_from_its_opening(default_policy: Policy) -> None:
    state = _incident("old-1", WINTER_MONDAY, first_alert_at=None, acknowledged_at=WINTER_MONDAY + timedelta(minutes=1))
    facts = incident_facts(state, default_policy)
    assert facts.clock_start == WINTER_MONDAY + timedelta(seconds=3)
    assert facts.mtta_seconds == 57.0
    assert facts.mttr_seconds is None
    assert facts.escalation_depth == 0 and facts.pages == []


# --- the report ----------------------------------------------------------------------------------------------------


def _facts(
    key: str, service: str, severity: str, start: datetime, mtta: float | None, mttr: float | None, depth: int = 1
) -> IncidentFacts:
    def later(seconds: float | None) -> datetime | None:
        return None if seconds is None else start + timedelta(seconds=seconds)

    pages = [
        PageFact(
            person="alice",
            at=start,
            level=1,
            timezone="Europe/Berlin",
            out_of_hours=out_of_hours(start, "Europe/Berlin"),
        )
    ]
    return IncidentFacts(
        key=key,
        title=key,
        service=service,
        severity=severity,
        status="resolved" if mttr is not None else "triggered",
        clock_start=start,
        acknowledged_at=later(mtta),
        resolved_at=later(mttr),
        mtta_seconds=mtta,
        mttr_seconds=mttr,
        escalation_depth=depth,
        pages=pages if depth else [],
    )


def test_the_report_groups_by_service_and_severity_and_counts_days_people_and_depths(default_policy: Policy) -> None:
    since = datetime(2025, 6, 1, 0, 0, tzinfo=UTC)
    until = datetime(2025, 6, 4, 12, 0, tzinfo=UTC)
    incidents = [
        _facts("c-1", "checkout", "sev1", datetime(2025, 6, 2, 3, 0, tzinfo=UTC), 60.0, 600.0),  # 05:00 Berlin
        _facts("c-2", "checkout", "sev1", datetime(2025, 6, 2, 10, 0, tzinfo=UTC), 120.0, 1200.0, depth=2),
        _facts("c-3", "checkout", "sev1", datetime(2025, 6, 4, 10, 0, tzinfo=UTC), 600.0, 3600.0),
        _facts("a-1", "api", "sev2", datetime(2025, 6, 4, 11, 0, tzinfo=UTC), None, None, depth=0),
        # Its first alert came before the window: a later run of a long incident, listed but not counted.
        _facts("old", "checkout", "sev1", datetime(2025, 5, 31, 23, 0, tzinfo=UTC), 1.0, 2.0),
    ]
    report = build_report(
        incidents, default_policy, since=since, until=until, generated_at=until, limit=10, truncated=False
    )
    assert [i.key for i in report.incidents] == ["c-1", "c-2", "c-3", "a-1"]
    rows = {(r.service, r.severity): r for r in report.by_service_severity}
    checkout = rows[("checkout", "sev1")]
    assert (checkout.incidents, checkout.mtta.median_seconds, checkout.mtta.p90_seconds) == (3, 120.0, 600.0)
    assert (checkout.mttr.median_seconds, checkout.mttr.p90_seconds) == (1200.0, 3600.0)
    api = rows[("api", "sev2")]
    assert (api.incidents, api.mtta.count, api.mtta.median_seconds, api.mttr.p90_seconds) == (1, 0, None, None)
    # Overall: MTTA over the three acknowledged (60, 120, 600), not over four.
    assert (report.overall.incidents, report.overall.mtta.count, report.overall.mtta.median_seconds) == (4, 3, 120.0)
    assert [(d.day, d.incidents) for d in report.per_day] == [
        (date(2025, 6, 1), 0),
        (date(2025, 6, 2), 2),
        (date(2025, 6, 3), 0),
        (date(2025, 6, 4), 2),
    ]
    assert [(d.depth, d.incidents) for d in report.escalation_depth] == [(0, 1), (1, 2), (2, 1)]
    [alice] = report.people
    assert (alice.name, alice.timezone, alice.pages, alice.out_of_hours_pages) == (
        "Alice Martin",
        "Europe/Berlin",
        3,
        1,
    )
    assert (
        "09:00" in report.definitions.out_of_hours
        and "working_hours" in report.definitions.out_of_hours
        and "nearest rank" in report.definitions.p90
    )


def test_an_empty_window_is_a_report_too(default_policy: Policy) -> None:
    since = datetime(2025, 6, 1, tzinfo=UTC)
    report = build_report([], default_policy, since=since, until=since, generated_at=since, limit=5, truncated=False)
    assert report.overall.incidents == 0 and report.overall.mtta.median_seconds is None
    assert report.by_service_severity == [] and report.people == []
    assert [(d.depth, d.incidents) for d in report.escalation_depth] == [(0, 0)]


def test_the_visibility_query_bounds_the_window_in_utc_and_skips_continued_runs() -> None:
    since = datetime(2025, 6, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    assert window_query(since) == (
        "WorkflowType = 'IncidentWorkflow' AND ExecutionStatus != 'ContinuedAsNew' "
        "AND StartTime >= '2025-06-01T10:00:00Z'"
    )
