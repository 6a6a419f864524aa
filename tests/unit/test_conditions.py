"""The condition language of management escalation steps: parsing, evaluation, and when a condition first holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tocsin.policy.conditions import Condition, IncidentFacts, all_hold, first_time_all_hold, parse_condition

OPENED = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def _facts(
    *,
    severity: str = "sev1",
    status: str = "triggered",
    service: str = "api",
    minutes: float = 0,
    escalation_level: int = 1,
    acknowledged: bool = False,
) -> IncidentFacts:
    return IncidentFacts(
        severity=severity,
        status=status,
        service=service,
        duration=timedelta(minutes=minutes),
        escalation_level=escalation_level,
        acknowledged=acknowledged,
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("severity == 'sev1'", Condition("severity", "==", "sev1")),
        ('severity=="sev1"', Condition("severity", "==", "sev1")),
        ("  status != 'resolved'  ", Condition("status", "!=", "resolved")),
        ("service == ''", Condition("service", "==", "")),
        ('service == "it\'s"', Condition("service", "==", "it's")),
        ("duration > '30 minutes'", Condition("duration", ">", timedelta(minutes=30))),
        ("duration <= '1h30m'", Condition("duration", "<=", timedelta(minutes=90))),
        ("escalation_level >= 2", Condition("escalation_level", ">=", 2)),
        ("acknowledged == false", Condition("acknowledged", "==", False)),
        ("acknowledged != true", Condition("acknowledged", "!=", True)),
    ],
)
def test_parse_condition(text: str, expected: Condition) -> None:
    assert parse_condition(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("severity ~= 'sev1'", "condition \"severity ~= 'sev1'\" is not of the form <field> <op> <value>"),
        ("", "condition '' is not of the form <field> <op> <value>"),
        ("severity ==", "condition 'severity ==' is not of the form"),
        ("== 'sev1'", "condition \"== 'sev1'\" is not of the form"),
        ("Severity == 'sev1'", "is not of the form"),
        (
            "age > '1 hour'",
            "condition \"age > '1 hour'\": unknown field 'age' "
            "(known: severity, status, service, duration, escalation_level, acknowledged)",
        ),
        ("severity > 'sev1'", "condition \"severity > 'sev1'\": severity can only be compared with == or !="),
        ("severity == sev1", "value 'sev1' must be quoted text, a whole number, true or false"),
        ("severity == 1", "condition 'severity == 1': severity is compared with quoted text"),
        ("duration > 30", "condition 'duration > 30': duration needs quoted text such as '30 minutes'"),
        ("duration == '30m'", "condition \"duration == '30m'\": compare duration with >, >=, < or <="),
        ("duration > '30 minuts'", "invalid duration '30 minuts': unknown unit 'minuts'"),
        ("escalation_level == '2'", "escalation_level is compared with a whole number"),
        ("acknowledged == 'yes'", "acknowledged is compared with true or false"),
        # Not a conjunction: one condition per list item, and they must all hold.
        (
            "severity == 'sev1' and duration > '5m'",
            "value \"'sev1' and duration > '5m'\" is not one quoted text: write one comparison per condition",
        ),
    ],
)
def test_parse_condition_errors_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_condition(text)
    assert message in str(info.value)


def test_holds_for_each_field() -> None:
    facts = _facts(severity="sev2", status="acknowledged", service="db", escalation_level=2, acknowledged=True)
    assert parse_condition("severity == 'sev2'").holds(facts)
    assert not parse_condition("severity == 'sev1'").holds(facts)
    assert parse_condition("status != 'resolved'").holds(facts)
    assert parse_condition("service == 'db'").holds(facts)
    assert parse_condition("escalation_level >= 2").holds(facts)
    assert not parse_condition("escalation_level > 2").holds(facts)
    assert parse_condition("acknowledged == true").holds(facts)


def test_duration_greater_than_holds_on_the_second_it_is_reached() -> None:
    condition = parse_condition("duration > '30 minutes'")
    assert not condition.holds(_facts(minutes=29.99))
    assert condition.holds(_facts(minutes=30))
    assert condition.holds(_facts(minutes=31))
    shorter = parse_condition("duration < '30 minutes'")
    assert shorter.holds(_facts(minutes=29.99))
    assert not shorter.holds(_facts(minutes=30))


def test_all_hold() -> None:
    conditions = ["severity == 'sev1'", "duration > '30 minutes'"]
    assert not all_hold(conditions, _facts(minutes=10))
    assert all_hold(conditions, _facts(minutes=30))
    assert not all_hold(conditions, _facts(severity="sev2", minutes=45))
    assert all_hold([], _facts())


def test_first_time_all_hold_is_when_the_duration_is_reached() -> None:
    conditions = ["severity == 'sev1'", "duration > '30 minutes'"]
    assert first_time_all_hold(conditions, _facts(minutes=10), OPENED) == OPENED + timedelta(minutes=30)


def test_first_time_all_hold_is_now_when_everything_already_holds() -> None:
    conditions = ["severity == 'sev1'", "duration > '30 minutes'"]
    assert first_time_all_hold(conditions, _facts(minutes=45), OPENED) == OPENED + timedelta(minutes=45)


def test_first_time_all_hold_waits_for_the_latest_duration() -> None:
    conditions = ["duration > '30 minutes'", "duration >= '1 hour'", "severity == 'sev1'"]
    assert first_time_all_hold(conditions, _facts(minutes=5), OPENED) == OPENED + timedelta(hours=1)


def test_first_time_all_hold_is_none_when_only_an_event_can_make_it_true() -> None:
    conditions = ["severity == 'sev1'", "duration > '30 minutes'"]
    assert first_time_all_hold(conditions, _facts(severity="sev3", minutes=10), OPENED) is None
    assert first_time_all_hold(["acknowledged == true"], _facts(), OPENED) is None


def test_first_time_all_hold_with_an_upper_bound() -> None:
    within = ["duration < '10 minutes'"]
    assert first_time_all_hold(within, _facts(minutes=5), OPENED) == OPENED + timedelta(minutes=5)
    # Time only moves forward: a "less than" that no longer holds never will again.
    assert first_time_all_hold(within, _facts(minutes=15), OPENED) is None
    window = ["duration > '30 minutes'", "duration <= '1 hour'"]
    assert first_time_all_hold(window, _facts(minutes=5), OPENED) == OPENED + timedelta(minutes=30)
    # A window that has closed by the time the lower bound is reached is never open.
    closed = ["duration > '30 minutes'", "duration < '20 minutes'"]
    assert first_time_all_hold(closed, _facts(minutes=5), OPENED) is None
