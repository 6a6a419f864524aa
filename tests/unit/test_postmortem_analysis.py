"""The post-mortem's pure steps between "evidence gathered" and "report rendered": the merged timeline, the
impact, the built-in analyzer and the action items. No Temporal, no network: inputs in, values out.

One incident runs through most tests: checkout, v1.42 deployed at 14:02, error rate over its objective at
14:07 and latency at 14:08, the incident opened at 14:20 (13 minutes after the first symptom), acknowledged
at 14:23, mitigated at 14:35 and resolved at 15:00.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from tocsin.incident.contracts import IncidentState
from tocsin.policy.postmortem import ActionItems, ImpactCosts, PostmortemPolicy, Sli
from tocsin.postmortem.action_items import action_items, title_key
from tocsin.postmortem.builtin_analyzer import builtin_analysis
from tocsin.postmortem.contracts import (
    ActionItem,
    Analysis,
    AnalysisRequest,
    Claim,
    Evidence,
    Impact,
    SeriesSummary,
    SourceName,
    SourceResult,
)
from tocsin.postmortem.impact import compute_impact
from tocsin.postmortem.timeline import merge_timeline


def at(hhmm: str, seconds: int = 0) -> datetime:
    hour, minute = hhmm.split(":")
    return datetime(2026, 11, 27, int(hour), int(minute), seconds, tzinfo=UTC)


def ev(id: str, when: datetime | None, summary: str, **extra: Any) -> Evidence:
    source: SourceName = id.rsplit("-", 1)[0]  # type: ignore[assignment]
    return Evidence(id=id, source=source, at=when, summary=summary, **extra)


POLICY = PostmortemPolicy(
    slis={
        "error_rate": Sli(query="sum(rate(errors[5m]))", objective=0.01),
        "availability": Sli(query="avg(up)", objective=0.999, worse_is="lower"),
        "latency_p95": Sli(query="histogram_quantile(0.95, x)", objective=0.5),
    },
    action_items=ActionItems(default_owner="platform-sre", due={"P1": timedelta(days=3), "P2": timedelta(days=21)}),
    impact=ImpactCosts(users_per_minute=120, cost_per_minute=55.5),
)

SERIES = [
    SeriesSummary(
        name="error_rate",
        onset=at("14:07"),
        peak_at=at("14:10"),
        peak=0.034,
        recovery=at("14:40"),
    ),
    SeriesSummary(name="latency_p95", onset=at("14:08"), peak_at=at("14:12"), peak=2.3, recovery=at("14:41")),
    SeriesSummary(
        name="availability",
        labels='service="payments"',
        onset=at("14:09"),
        peak_at=at("14:15"),
        peak=0.972,
        recovery=at("14:39"),
        worse_is="lower",
    ),
]

DEPLOY = ev("changes-1", at("14:02"), "Deployed checkout v1.42 (PR #311) to prod", link="https://git.example/c/abc")
ONSET_ERRORS = ev("metrics-1", at("14:07"), "error_rate rose above 0.01 at 14:07 (0.02)")
ONSET_LATENCY = ev("metrics-2", at("14:08"), "latency_p95 rose above 0.5 at 14:08 (0.9)")
PEAK_ERRORS = ev("metrics-3", at("14:10"), "error_rate peaked at 0.034 at 14:10 (objective 0.01)")
ONSET_AVAILABILITY = ev("metrics-4", at("14:09"), 'availability{service="payments"} fell below 0.999 at 14:09')
OPENED = ev("incident-1", at("14:20"), "opened: Checkout error rate high (from alertmanager)")
ACKED = ev("incident-2", at("14:23"), "Acknowledged by alice")


def incident(**overrides: Any) -> IncidentState:
    fields: dict[str, Any] = {
        "key": "checkout-errors",
        "title": "Checkout error rate high",
        "service": "checkout",
        "severity": "sev1",
        "status": "resolved",
        "opened_at": at("14:20"),
        "acknowledged_at": at("14:23"),
        "mitigated_at": at("14:35"),
        "resolved_at": at("15:00"),
    }
    return IncidentState(**(fields | overrides))


def request(evidence: list[Evidence], series: list[SeriesSummary] | None = None) -> AnalysisRequest:
    return AnalysisRequest(
        key="checkout-errors",
        title="Checkout error rate high",
        service="checkout",
        severity="sev1",
        timeline=[],
        evidence=evidence,
        series=SERIES if series is None else series,
        impact=Impact(duration=timedelta(minutes=40)),
        settings=POLICY,
    )


# -- timeline -------------------------------------------------------------------------------------------


def test_timeline_merges_sources_in_time_order_and_keeps_ids_and_sources() -> None:
    sources = [
        SourceResult(source="incident", status="ok", evidence=[ACKED, OPENED]),
        SourceResult(source="metrics", status="ok", evidence=[PEAK_ERRORS, ONSET_ERRORS]),
        SourceResult(source="changes", status="ok", evidence=[DEPLOY]),
        SourceResult(source="logs", status="skipped", reason="TOCSIN_LOKI_URL is not set"),
    ]
    timeline = merge_timeline(sources)
    assert [(e.id, e.source, e.at) for e in timeline] == [
        ("changes-1", "changes", at("14:02")),
        ("metrics-1", "metrics", at("14:07")),
        ("metrics-3", "metrics", at("14:10")),
        ("incident-1", "incident", at("14:20")),
        ("incident-2", "incident", at("14:23")),
    ]
    assert timeline[0].text == "Deployed checkout v1.42 (PR #311) to prod"


def test_timeline_drops_duplicates_and_undated_evidence() -> None:
    logs = [
        ev("logs-1", at("14:07", 1), "ERROR payment gateway timeout"),
        ev("logs-2", at("14:07", 3), "ERROR  payment gateway timeout."),  # the same line again, 2 s later
        ev("logs-3", at("14:09"), "ERROR payment gateway timeout"),  # two minutes later: a new occurrence
        ev("logs-4", None, "12,431 error lines in the window"),  # no time: not on the timeline
    ]
    pagerduty = [
        ev("pagerduty-1", at("14:23", 2), "acknowledged by Alice"),  # the fact the incident also reported
        ev("pagerduty-2", at("14:20", 30), "Escalated to level 2"),
    ]
    sources = [
        SourceResult(source="logs", status="ok", evidence=logs),
        SourceResult(source="incident", status="ok", evidence=[OPENED, ACKED]),
        SourceResult(source="pagerduty", status="ok", evidence=pagerduty),
        # One evidence item reported twice (a retried source) counts once.
        SourceResult(source="changes", status="ok", evidence=[DEPLOY, DEPLOY]),
    ]
    timeline = merge_timeline(sources)
    assert [e.id for e in timeline] == [
        "changes-1",
        "logs-1",
        "logs-3",
        "incident-1",
        "pagerduty-2",
        "incident-2",
    ]


def test_timeline_at_the_same_instant_puts_the_incident_first_and_treats_naive_times_as_utc() -> None:
    naive = ev("logs-1", datetime(2026, 11, 27, 14, 20), "connection refused")
    timeline = merge_timeline(
        [
            SourceResult(source="logs", status="ok", evidence=[naive]),
            SourceResult(source="incident", status="ok", evidence=[OPENED]),
        ]
    )
    assert [e.id for e in timeline] == ["incident-1", "logs-1"]


# -- impact ---------------------------------------------------------------------------------------------


def test_impact_durations_worst_values_breaches_services_and_cost() -> None:
    impact = compute_impact(incident(), SERIES, POLICY)
    assert impact.duration == timedelta(minutes=40)
    assert impact.time_to_acknowledge == timedelta(minutes=3)
    assert impact.time_to_mitigate == timedelta(minutes=15)
    assert impact.time_to_resolve == timedelta(minutes=40)
    assert impact.peak_error_rate == 0.034
    assert impact.lowest_availability == 0.972
    assert impact.worst_latency_p95 == 2.3
    assert impact.slo_breaches == [
        "error_rate peaked at 3.4% against an objective of 1%",
        "availability fell to 97.2% against an objective of 99.9%",
        "latency_p95 peaked at 2.3 s against an objective of 0.5 s",
    ]
    assert impact.services == ["checkout", "payments"]
    assert impact.affected_users == 40 * 120
    assert impact.estimated_cost == 40 * 55.5


def test_impact_takes_the_worst_of_several_series_and_skips_what_stayed_within_objective() -> None:
    series = [
        SeriesSummary(name="error_rate", labels='service="checkout"', peak=0.004),
        SeriesSummary(name="error_rate", labels='service="cart"', peak=0.008),
        SeriesSummary(name="availability", peak=0.9995, worse_is="lower"),
        SeriesSummary(name="queue_depth", labels='{service="billing",queue="q1"}', peak=12000),
    ]
    impact = compute_impact(incident(), series, POLICY)
    assert impact.peak_error_rate == 0.008
    assert impact.lowest_availability == 0.9995
    assert impact.worst_latency_p95 is None
    assert impact.slo_breaches == []  # 0.8% < 1%, 99.95% > 99.9%
    assert impact.services == ["checkout", "cart", "billing"]


def test_impact_without_costs_or_acknowledgement() -> None:
    impact = compute_impact(incident(acknowledged_at=None, mitigated_at=None), [], PostmortemPolicy())
    assert impact.duration == timedelta(minutes=40)
    assert impact.time_to_acknowledge is None and impact.time_to_mitigate is None
    assert impact.affected_users is None and impact.estimated_cost is None
    assert impact.peak_error_rate is None and impact.slo_breaches == []
    assert impact.services == ["checkout"]


# -- built-in analyzer ----------------------------------------------------------------------------------


def test_builtin_blames_a_deploy_five_minutes_before_the_onset_citing_both() -> None:
    analysis = builtin_analysis(
        request([DEPLOY, ONSET_ERRORS, ONSET_LATENCY, PEAK_ERRORS, ONSET_AVAILABILITY, OPENED, ACKED])
    )
    assert analysis.analyzer == "built-in"
    assert analysis.confidence == 0.6
    cause = analysis.primary_cause
    assert cause is not None
    assert cause.evidence == ["changes-1", "metrics-1"]
    assert cause.text == (
        "Deployment shortly before the onset: Deployed checkout v1.42 (PR #311) to prod at 14:02, "
        "5 min before error_rate rose at 14:07"
    )
    order, lag = analysis.contributing_factors
    assert order.text == (
        "Symptom order: error_rate rose at 14:07, latency_p95 rose at 14:08, availability (payments) fell at "
        "14:09: error_rate came first"
    )
    assert order.evidence == ["metrics-1", "metrics-2", "metrics-4"]
    assert lag.text.startswith("Detection lag: error_rate rose at 14:07 but the incident opened only at 14:20, 13 min")
    assert "monitoring" in lag.text
    assert lag.evidence == ["metrics-1", "incident-1"]
    [measure] = analysis.preventive_measures
    assert measure.text == "Alert on error_rate within 5 min of it crossing its objective"
    known = {"changes-1", "metrics-1", "metrics-2", "metrics-3", "metrics-4", "incident-1", "incident-2"}
    for claim in [cause, *analysis.contributing_factors, *analysis.preventive_measures]:
        assert claim.evidence and set(claim.evidence) <= known


def test_builtin_confidence_falls_with_the_distance_and_with_other_changes() -> None:
    early = ev("changes-2", at("13:27"), "Merged PR #298: raise pool size")
    hour = builtin_analysis(request([early, ONSET_ERRORS, OPENED]))
    assert hour.confidence == 0.4
    assert hour.primary_cause is not None
    assert hour.primary_cause.text.startswith("Pull request shortly before the onset: Merged PR #298")
    assert "40 min before error_rate rose at 14:07" in hour.primary_cause.text

    both = builtin_analysis(request([early, DEPLOY, ONSET_ERRORS, OPENED]))
    assert both.primary_cause is not None and both.primary_cause.evidence == ["changes-1", "metrics-1"]  # the later
    assert both.primary_cause.text.startswith("Deployment")
    assert both.confidence == 0.5
    other = both.contributing_factors[0]
    assert other.evidence == ["changes-2"]
    assert "Merged PR #298: raise pool size at 13:27" in other.text


def test_builtin_without_a_change_says_unknown_with_low_confidence() -> None:
    analysis = builtin_analysis(request([ONSET_ERRORS, ONSET_LATENCY, ev("incident-1", at("14:09"), "opened: x")]))
    assert analysis.confidence == 0.2
    assert analysis.primary_cause is not None
    assert analysis.primary_cause.text.startswith("Unknown: nothing correlates with the first symptom")
    assert "no change was gathered at all" in analysis.primary_cause.text
    assert analysis.primary_cause.evidence == ["metrics-1"]
    # Opened 2 minutes after the onset: no detection lag.
    assert not any("Detection lag" in c.text for c in analysis.contributing_factors)
    assert analysis.preventive_measures == []
    assert action_items(analysis, POLICY, date(2026, 11, 30)) == []  # no deployment, no monitoring cause


def test_builtin_ignores_a_change_hours_before_and_one_after_the_onset() -> None:
    old = ev("changes-1", at("11:00"), "Deployed checkout v1.41")
    after = ev("changes-2", at("14:30"), "Rolled back checkout to v1.41")
    analysis = builtin_analysis(request([old, after, ONSET_ERRORS, OPENED]))
    assert analysis.confidence == 0.2
    cause = analysis.primary_cause
    assert cause is not None
    assert cause.text == (
        "Unknown: nothing correlates with the first symptom (error_rate rose at 14:07): no change landed in the "
        "60 min before it. Manual investigation is needed."
    )
    assert cause.evidence == ["metrics-1"]
    nearest = analysis.contributing_factors[0]
    assert nearest.text == (
        "The nearest earlier change, Deployed checkout v1.41 at 11:00, landed 187 min before the first symptom: "
        "too early to be a likely cause"
    )
    assert nearest.evidence == ["changes-1"]
    # An unknown cause is not a deployment cause, even with an old deploy on record.
    assert not any("deployment" in i.title for i in action_items(analysis, POLICY, date(2026, 11, 30)))


def test_builtin_with_nothing_to_go_on_claims_nothing() -> None:
    analysis = builtin_analysis(request([], series=[]))
    assert analysis.primary_cause is None
    assert analysis.contributing_factors == [] and analysis.preventive_measures == []
    assert analysis.confidence == 0.1
    assert analysis.notes and "no metric onset" in analysis.notes[0]


def test_builtin_without_series_anchors_on_the_opening() -> None:
    deploy = ev("changes-1", at("14:12"), "Deployed checkout v1.42")
    analysis = builtin_analysis(request([deploy, OPENED], series=[]))
    assert analysis.primary_cause is not None
    assert analysis.primary_cause.evidence == ["changes-1", "incident-1"]
    assert "8 min before the incident opened at 14:20" in analysis.primary_cause.text
    assert analysis.confidence == 0.6


# -- action items ---------------------------------------------------------------------------------------

TODAY = date(2026, 11, 30)


def test_action_items_for_a_deploy_cause_and_detection_lag() -> None:
    analysis = builtin_analysis(request([DEPLOY, ONSET_ERRORS, ONSET_LATENCY, OPENED]))
    items = action_items(analysis, POLICY, TODAY, service="checkout")
    assert [(i.title, i.priority, i.owner, i.due, i.origin) for i in items] == [
        ("Add deployment validation", "P1", "platform-sre", date(2026, 12, 3), "rule"),
        ("Roll out with canary deployments", "P2", "platform-sre", date(2026, 12, 21), "rule"),
        ("Improve monitoring coverage for checkout", "P1", "platform-sre", date(2026, 12, 3), "rule"),
        (
            "Alert on error_rate within 5 min of it crossing its objective",
            "P2",
            "platform-sre",
            date(2026, 12, 21),
            "analysis",
        ),
    ]
    assert items[0].evidence == ["changes-1", "metrics-1"]
    assert items[2].evidence == ["metrics-1", "incident-1"]


def test_action_items_merge_the_analysis_own_items_without_duplicates() -> None:
    analysis = Analysis(
        analyzer="llm:test",
        primary_cause=Claim(text="Connection pool exhausted after the config deploy", evidence=["logs-1"]),
        preventive_measures=[
            Claim(text="Implement: roll out with canary deployments.", evidence=["metrics-1"]),
            Claim(text="Cap the pool's queue length", evidence=["logs-2"]),
        ],
        action_items=[
            ActionItem(
                title="ADD   deployment validation!",
                description="Run the load test in CI",
                owner="payments-team",
                priority="P2",
                due=date(2027, 1, 1),
                origin="analysis",
                evidence=["logs-3"],
            ),
            ActionItem(title="Cap the pool's queue length", owner="TBD", priority="P3", due=date(2027, 1, 1)),
        ],
        confidence=0.7,
    )
    items = action_items(analysis, POLICY, TODAY)
    assert [(i.title, i.priority, i.owner) for i in items] == [
        ("Add deployment validation", "P1", "payments-team"),
        ("Roll out with canary deployments", "P2", "platform-sre"),
        # An exhausted pool is also a resource run out (tocsin.postmortem.cause_classes).
        ("Protect connection pool with a limit and an alert before it is exhausted", "P1", "platform-sre"),
        ("Add performance profiling of changes to the test suite", "P2", "platform-sre"),
        ("Cap the pool's queue length", "P2", "platform-sre"),
    ]
    assert items[0].evidence == ["logs-1", "logs-3"]
    assert items[1].evidence == ["logs-1", "metrics-1"]
    # Due dates come from the policy, by the merged priority, counted from today.
    assert [i.due for i in items] == [
        date(2026, 12, 3),
        date(2026, 12, 21),
        date(2026, 12, 3),
        date(2026, 12, 21),
        date(2026, 12, 21),
    ]


def test_action_items_no_rule_fires_without_a_deploy_or_monitoring_cause() -> None:
    analysis = Analysis(
        analyzer="built-in",
        primary_cause=Claim(text="Unknown: nothing correlates with the first symptom", evidence=["metrics-1"]),
        confidence=0.2,
    )
    assert action_items(analysis, POLICY, TODAY) == []
    # A primary cause citing change evidence is a deployment cause even when its words do not say so.
    cited = analysis.model_copy(
        update={"primary_cause": Claim(text="PR #311 changed the timeout", evidence=["changes-4"])}
    )
    assert [i.title for i in action_items(cited, POLICY, TODAY)] == [
        "Add deployment validation of the timeout",  # the setting the words say changed
        "Roll out with canary deployments",
    ]
    # A monitoring cause without the service named.
    blind = analysis.model_copy(update={"primary_cause": Claim(text="No alert covered the queue", evidence=["x"])})
    [item] = action_items(blind, PostmortemPolicy(), TODAY)
    assert (item.title, item.owner, item.due) == ("Improve monitoring coverage", "sre", TODAY + timedelta(days=7))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Add deployment validation", "add deployment validation."),
        ("Implement: Cap the pool", "cap   the POOL"),
        ("Roll out with canary-deployments", "roll out with canary deployments"),
    ],
)
def test_title_key_normalizes(a: str, b: str) -> None:
    assert title_key(a) == title_key(b)
