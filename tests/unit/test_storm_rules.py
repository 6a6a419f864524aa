"""Storm consolidation and the incident's bounds as pure functions: no Temporal, every rule on its own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

from tocsin.incident import bounds
from tocsin.incident.contracts import AlertEvent, IncidentState, TimelineEntry
from tocsin.storm import consolidation as storm
from tocsin.storm.contracts import AdmitAnswer, GuardAdmit, StormGuardState, StormMember, StormRecord

T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=5)


def member(n: int, severity: str = "sev3", at: datetime = T0) -> StormMember:
    return StormMember(key=f"k{n}", severity=severity, service=f"svc{n % 7}", title=f"t{n}", opened_at=at)


def ask(state: StormGuardState, n: int, at: datetime, threshold: int = 3, manual: bool = False) -> AdmitAnswer:
    request = GuardAdmit(member=member(n, at=at), manual=manual, threshold=threshold, window=WINDOW, reply_to="r")
    return storm.admit(state, request, at)


def test_the_first_threshold_page_alone_then_one_storm_holds_the_rest() -> None:
    state = StormGuardState()
    answers = [ask(state, n, T0 + timedelta(seconds=n)) for n in range(6)]
    assert [a.held for a in answers] == [False, False, False, True, True, True]
    keys = {a.storm_key for a in answers if a.held}
    assert keys == {"storm-20261203-090003"}
    # Only the answer that starts the storm carries the incidents that paged before it, marked as paged.
    assert [m.key for m in answers[3].earlier] == ["k0", "k1", "k2"]
    assert all(m.paged for m in answers[3].earlier)
    assert answers[4].earlier == []


def test_asking_again_answers_the_same_and_counts_once() -> None:
    state = StormGuardState()
    for n in range(4):
        ask(state, n, T0)
    again = ask(state, 3, T0 + timedelta(seconds=1))
    assert again.held and again.earlier == []
    assert state.storm is not None and state.storm.members == 1


def test_a_quiet_window_ends_the_storm_and_counting_starts_afresh() -> None:
    state = StormGuardState()
    for n in range(5):
        ask(state, n, T0)
    later = T0 + WINDOW + timedelta(seconds=1)
    assert not ask(state, 10, later).held
    assert state.storm is None
    # Old openings left the window: three more page alone before a new storm begins.
    assert [ask(state, n, later).held for n in range(11, 14)] == [False, False, True]


def test_a_person_asking_for_an_incident_is_never_held() -> None:
    state = StormGuardState()
    for n in range(5):
        ask(state, n, T0)
    assert not ask(state, 99, T0, manual=True).held


def test_the_decided_answers_are_bounded() -> None:
    state = StormGuardState()
    for n in range(storm.DECIDED_KEPT + 50):
        ask(state, n, T0)
    assert len(state.decided) == storm.DECIDED_KEPT == len(state.decided_at)


def test_a_storm_record_lists_members_once_and_summarizes_by_severity_and_service() -> None:
    record = StormRecord(window=WINDOW)
    added = storm.add_members(record, [member(1, "sev3"), member(2, "sev1")], T0)
    assert [m.key for m in added] == ["k1", "k2"]
    assert storm.add_members(record, [member(2, "sev1")], T0) == []
    assert record.count == 2
    assert storm.most_severe([m.severity for m in added]) == "sev1"
    assert storm.over_at(record) == T0 + WINDOW
    text = storm.summary(record)
    assert text.startswith("storm over: 2 new incidents") and "sev1 1, sev3 1" in text
    record.summarized = True
    assert storm.over_at(record) is None


def state() -> IncidentState:
    return IncidentState(key="k", title="t", service="s", severity="sev1", opened_at=T0)


def event(n: int, status: Literal["firing", "resolved"] = "firing") -> AlertEvent:
    return AlertEvent(fingerprint=f"f{n}", status=status, summary="y" * 600)


def test_alerts_past_the_cap_are_counted_not_kept_and_stop_auto_resolution() -> None:
    s = state()
    lines = bounds.take_alerts(s, [event(n) for n in range(15)], T0, cap=10)
    assert len(s.alerts) == 10 and s.alerts_untracked == 5 and s.alert_count == 15
    assert all(len(r.summary) == bounds.ALERT_SUMMARY_MAX for r in s.alerts.values())
    assert [k for k, _ in lines] == ["alert_firing", "alerts"]
    assert lines[0][1].startswith("10 alerts firing:")
    bounds.take_alerts(s, [event(n, "resolved") for n in range(10)], T0, cap=10)
    assert s.alert_events == {"firing": 15, "resolved": 10}
    assert not bounds.all_quiet(s), "five alerts are untracked: nobody knows they are quiet"


def test_a_few_alert_changes_reach_the_timeline_one_by_one() -> None:
    s = state()
    assert len(bounds.take_alerts(s, [event(n) for n in range(3)], T0, cap=10)) == 3
    assert bounds.take_alerts(s, [event(0)], T0, cap=10) == [], "a repeat changes nothing on the timeline"


def test_a_full_timeline_folds_noise_first_and_keeps_the_head_and_what_people_did() -> None:
    s = state()
    for kind in ("opened", "triaged", "acknowledged"):
        bounds.append_entry(s, TimelineEntry(at=T0, kind=kind, text=kind), limit=5)
    for n in range(10):
        bounds.append_entry(s, TimelineEntry(at=T0, kind="alert_firing", text=f"a{n}"), limit=5)
    assert [e.kind for e in s.timeline] == ["opened", "triaged", "acknowledged", "alert_firing", "alert_firing"]
    assert s.timeline_folded == 8
    bounds.append_entry(s, TimelineEntry(at=T0, kind="note", text="z" * 5000), limit=100)
    assert len(s.timeline[-1].text) == bounds.TIMELINE_TEXT_MAX


def test_shrink_folds_until_the_carried_state_fits() -> None:
    s = state()
    for _ in range(400):
        bounds.append_entry(s, TimelineEntry(at=T0, kind="note", text="n" * 900), limit=1000)
    bounds.shrink(s, 100_000)
    assert bounds.carried_bytes(s) <= 100_000
    assert s.timeline[0].text == "n" * 900 and s.timeline_folded > 0


def test_incidents_show_pages_a_long_timeline_newest_first() -> None:
    from tocsin.cli.commands import _describe

    s = state()
    for n in range(120):
        bounds.append_entry(s, TimelineEntry(at=T0, kind="note", text=f"entry-{n:03d}"), limit=100)
    latest = _describe(s, page=1, size=50)
    assert "entry-119" in latest and "entry-069" not in latest
    assert "timeline page 1 of 2 (100 entries" in latest
    assert "20 older entries were folded away" in latest
    oldest = _describe(s, page=2, size=50)
    assert "entry-069" in oldest and "entry-119" not in oldest


def ask_as(state: StormGuardState, n: int, severity: str, at: datetime = T0) -> AdmitAnswer:
    request = GuardAdmit(member=member(n, severity, at), threshold=3, window=WINDOW, reply_to="r")
    return storm.admit(state, request, at)


def test_a_storm_of_warnings_does_not_hold_a_sev1_until_sev1s_storm_too() -> None:
    state = StormGuardState()
    assert [ask_as(state, n, "sev3").held for n in range(5)] == [False, False, False, True, True]
    assert state.storm is not None and state.storm.worst == "sev3"
    # More severe than the storm: the first `threshold` page on their own, like the first of any burst.
    alone = [ask_as(state, n, "sev1") for n in range(10, 13)]
    assert [a.held for a in alone] == [False, False, False]
    assert "more severe than storm" in alone[0].reason and "1 of 3" in alone[0].reason
    assert state.storm.members == 2, "they are not storm members"
    # Past that, sev1s are a storm too: they join it, and it is a sev1 storm from now on.
    joined = ask_as(state, 13, "sev1")
    assert joined.held and joined.storm_key == state.storm.key
    assert state.storm.worst == "sev1"
    assert ask_as(state, 14, "sev2").held, "no more severe than the storm now: held"


def test_a_storm_that_began_severe_holds_everything_as_before() -> None:
    state = StormGuardState()
    for n in range(4):
        ask_as(state, n, "sev1")
    assert state.storm is not None and state.storm.worst == "sev1"
    assert ask_as(state, 5, "sev1").held and ask_as(state, 6, "sev3").held
    # State carried from before severities were tracked holds every member, as it did.
    state.storm.worst = None
    assert ask_as(state, 7, "sev1").held
