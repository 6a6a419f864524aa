"""What the gathered data says about the responders' stated cause, and when slow detection earns its item (#15).

Each rule has a case it matches and a counterexample it must not: log lines that corroborate (shared component
and error terms around the first symptom), saturation series that agree (CPU, memory, pool, queue, disk,
capacity), the one-sample tolerance between a deploy and the onset, and the monitoring item earned only by real
slow-detection evidence (not by a pull request titled "tighten detection").
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from tests.unit.test_postmortem_analysis import at, ev
from tocsin.policy.postmortem import PostmortemPolicy
from tocsin.postmortem.action_items import action_items
from tocsin.postmortem.builtin_analyzer import builtin_analysis
from tocsin.postmortem.contracts import (
    Analysis,
    AnalysisRequest,
    Claim,
    Evidence,
    Impact,
    SeriesSummary,
)
from tocsin.postmortem.log_corroboration import LOG_WINDOW, corroborating_lines
from tocsin.postmortem.series_words import saturation_family, series_named
from tocsin.postmortem.slow_detection import says_detection_was_slow
from tocsin.postmortem.stated_cause import Stated, judge

TODAY = date(2026, 12, 3)


def said(words: str, when: datetime | None = None) -> Evidence:
    return ev("incident-9", when or at("15:00"), f"alice, at resolution: {words}", said="resolution", by="alice")


def stated(words: str) -> Stated:
    return Stated(said(words), words, explicit=True)


def log(n: int, when: datetime, line: str) -> Evidence:
    return ev(f"logs-{n}", when, f"log line x1 (first {when:%H:%M}Z): {line}")


ONSET = (at("14:07"), "error_rate rose at 14:07", "metrics-1")
ONSET_AT = ONSET[0]


def series(name: str, onset: datetime | None = ONSET_AT) -> SeriesSummary:
    return SeriesSummary(name=name, onset=onset, peak_at=onset, peak=1.0)


# -- logs corroborate a stated cause ----------------------------------------------------------------------

CAUSE = "the ledger-writer connection pool was exhausted after deploy 2041 halved the pool size"


def test_a_log_line_near_the_onset_sharing_component_terms_corroborates_and_is_cited() -> None:
    line = log(1, at("14:06", 30), "ERROR ledger-writer: connection pool exhausted (size 10, waiting 240)")
    judgement = judge(stated(CAUSE), [said(CAUSE), line], [], ONSET)
    assert "Corroborated by the logs (ledger, writer, connection, pool, exhausted, size)" in judgement.text
    assert "logs-1: log line x1" in judgement.text and "logs-1" in judgement.evidence
    assert judgement.confidence == 0.45  # the stated 35%, plus the logs' agreement


@pytest.mark.parametrize(
    ("when", "line", "why"),
    [
        (at("14:06"), "ERROR request failed: upstream timed out after 10s", "only words every log line has"),
        (at("14:06"), "WARN pool warmup finished", "one shared term is not enough"),
        (at("14:07") + LOG_WINDOW + timedelta(seconds=1), "ERROR ledger-writer: connection pool exhausted", "too late"),
    ],
)
def test_log_lines_that_do_not_corroborate(when: datetime, line: str, why: str) -> None:
    evidence = [said(CAUSE), log(1, when, line)]
    assert corroborating_lines(CAUSE, evidence, ONSET[0]) is None, why
    assert "Corroborated by the logs" not in judge(stated(CAUSE), evidence, [], ONSET).text


def test_with_log_lines_gathered_and_none_corroborating_the_statement_says_so() -> None:
    evidence = [said("rolled back"), log(1, at("14:06"), "INFO healthy")]
    text = judge(stated("rolled back"), evidence, [], None).text
    assert text == (
        "A responder's statement, not yet corroborated by metrics, changes or logs (no change, metric or log line "
        "naming it was gathered)."
    )


# -- saturation metrics agree with a stated cause ---------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("cpu_utilization", "a regex exhausted CPU on every core"),
        ("process_resident_memory_bytes", "the worker ran out of memory"),
        ("db_pool_in_use", "connection pool exhausted"),
        ("queue_depth", "the export queue backed up"),
        ("node_disk_used_ratio", "the disk filled with logs"),
        ("index_capacity", "taking the index below the capacity it needs"),
    ],
)
def test_a_saturation_series_agrees_when_the_words_name_its_resource(name: str, words: str) -> None:
    assert saturation_family(name) is not None
    assert [s.name for s in series_named(words, [series(name)])] == [name]
    judgement = judge(stated(words), [said(words), ev("metrics-1", at("14:07"), f"{name} rose")], [series(name)], None)
    assert f"The metrics agree: {name} crossed its objective at 14:07." in judgement.text


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("cpu_utilization", "connection pool exhausted"),  # another resource
        ("db_pool_in_use", "a regex exhausted CPU"),
        ("queue_depth", "a bad deploy"),  # no resource named
        ("requests_total", "CPU exhausted"),  # not a saturation series at all
    ],
)
def test_a_saturation_series_is_not_named_by_words_about_something_else(name: str, words: str) -> None:
    assert series_named(words, [series(name)]) == []


def test_a_named_saturation_series_that_never_crossed_disagrees() -> None:
    words = "connection pool exhausted"
    calm = series("db_pool_in_use", onset=None)
    judgement = judge(stated(words), [said(words), ev("metrics-1", at("14:07"), "x")], [calm], None)
    assert "The metrics do not show it: db_pool_in_use never crossed its objective." in judgement.text


# -- one sample's tolerance between a deploy and the onset ------------------------------------------------

WORDS = "deploy 2041 broke the ledger"


def deploy(when: datetime) -> Evidence:
    return ev("changes-1", when, "Deployment 2041 of main@abc1234 to production")


def test_a_deploy_within_one_sample_after_the_onset_is_at_the_onset() -> None:
    judgement = judge(stated(WORDS), [said(WORDS), deploy(at("14:08"))], [], ONSET, timedelta(seconds=60))
    assert judgement.text.startswith("Corroborated by the changes: deploy 2041 is Deployment 2041")
    assert "at the first symptom, within one sample of it (error_rate rose at 14:07)" in judgement.text
    assert judgement.confidence == 0.7


def test_a_deploy_more_than_one_sample_after_the_onset_contradicts() -> None:
    judgement = judge(stated(WORDS), [said(WORDS), deploy(at("14:08", 1))], [], ONSET, timedelta(seconds=60))
    assert judgement.text.startswith("Contradicted by the changes")
    # A longer step (the policy's postmortem.step) is a longer tolerance.
    wide = judge(stated(WORDS), [said(WORDS), deploy(at("14:08", 1))], [], ONSET, timedelta(minutes=5))
    assert wide.text.startswith("Corroborated by the changes")


def request(evidence: list[Evidence], step: timedelta = timedelta(seconds=60)) -> AnalysisRequest:
    return AnalysisRequest(
        key="k",
        title="Checkout error rate high",
        service="checkout",
        severity="sev1",
        timeline=[],
        evidence=evidence,
        series=[series("error_rate")],
        impact=Impact(duration=timedelta(minutes=40)),
        settings=PostmortemPolicy(step=step),
    )


def test_the_correlation_counts_a_change_one_sample_after_the_onset() -> None:
    onset = ev("metrics-1", at("14:07"), "error_rate rose above 0.01 at 14:07")
    analysis = builtin_analysis(request([onset, ev("changes-1", at("14:07", 45), "Deployed checkout v1.42")]))
    assert analysis.primary_cause is not None
    assert analysis.primary_cause.text == (
        "Deployment at the onset: Deployed checkout v1.42 at 14:07, within one sample (60 s) of error_rate rose "
        "at 14:07"
    )
    late = builtin_analysis(request([onset, ev("changes-1", at("14:08", 1), "Deployed checkout v1.42")]))
    assert late.primary_cause is not None and late.primary_cause.text.startswith("Unknown")


# -- the monitoring item needs real slow-detection evidence -----------------------------------------------


def test_a_pull_request_titled_tighten_detection_does_not_earn_the_monitoring_item() -> None:
    """The regression: the PR's title was read as a monitoring cause."""
    onset = ev("metrics-1", at("14:07"), "error_rate rose above 0.01 at 14:07")
    opened = ev("incident-1", at("14:08"), "opened: Checkout error rate high")
    pr = ev("changes-1", at("13:50"), "PR #1107 'XSS: tighten detection of inline JS injection' merged")
    deploy = ev("changes-2", at("14:05"), "Deployment 4821 to production")
    evidence = [onset, opened, pr, deploy]
    analysis = builtin_analysis(request(evidence))
    assert any("tighten detection" in c.text for c in analysis.contributing_factors)
    titles = [i.title for i in action_items(analysis, PostmortemPolicy(), TODAY, evidence=evidence)]
    assert not any("monitoring" in t for t in titles), titles


def test_a_detection_lag_earns_the_monitoring_item() -> None:
    onset = ev("metrics-1", at("14:07"), "error_rate rose above 0.01 at 14:07")
    opened = ev("incident-1", at("14:30"), "opened: Checkout error rate high")
    analysis = builtin_analysis(request([onset, opened]))
    items = action_items(analysis, PostmortemPolicy(), TODAY, service="checkout")
    [item] = [i for i in items if "monitoring" in i.title]
    assert item.title == "Improve monitoring coverage for checkout"
    assert item.evidence == ["metrics-1", "incident-1"]


@pytest.mark.parametrize(
    ("text", "slow"),
    [
        ("No alert covered the queue", True),
        ("Alerting was delayed by the storm hold", True),
        ("Monitoring did not alert on the latency", True),
        ("We were blind: the dashboards had no detection for the export job", True),
        ("Add detection of inline JS injection", False),
        ("The alert rule for checkout fired at 14:08", False),
        ("Monitoring showed the pool at 100%", False),
    ],
)
def test_which_words_say_detection_was_slow(text: str, slow: bool) -> None:
    assert says_detection_was_slow(Claim(text=text, evidence=["x-1"])) is slow


def test_a_cited_changes_words_are_not_the_claims_own() -> None:
    change = ev("changes-3", at("13:31"), "PR #9 'alerting: no alert for the queue, add one' merged")
    claim = Claim(text=f"Other changes in the hour before the first symptom: {change.summary}", evidence=[change.id])
    assert not says_detection_was_slow(claim, [change])
    assert says_detection_was_slow(claim)  # without the evidence, the words alone would have read as slow
    analysis = Analysis(analyzer="built-in", contributing_factors=[claim], confidence=0.2)
    assert action_items(analysis, PostmortemPolicy(), TODAY, evidence=[change]) == []


def test_the_series_the_cause_itself_names_is_checked_before_those_other_words_name() -> None:
    note = ev("incident-3", at("14:10"), "tom, in a note: 502 errors everywhere", said="note", by="tom")
    both = [series("error_rate"), series("cpu_utilization")]
    metrics = ev("metrics-1", at("14:07"), "x")
    cpu = judge(stated("a regex exhausted CPU"), [said("a regex exhausted CPU"), note, metrics], both, None)
    assert "The metrics agree: cpu_utilization crossed its objective at 14:07." in cpu.text
    # A cause naming no series: the other statements' words decide.
    other = judge(stated("a bad rule"), [said("a bad rule"), note, metrics], both, None)
    assert "The metrics agree: error_rate crossed its objective at 14:07." in other.text
