"""The escalation planner, driven the way IncidentWorkflow drives it, without Temporal.

`_drive` is the workflow's loop in miniature: apply what `due` says (as workflows/incident/escalation.py records each
item), then jump to `next_wakeup`; human actions are applied at their moment, like an update that wakes the
workflow. The schedule it produces is asserted minute by minute.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.paths import ROOT
from tocsin.incident.contracts import IncidentState
from tocsin.policy import escalation as plan
from tocsin.policy.loader import load_policy
from tocsin.policy.schema import Policy

POLICY: Policy = load_policy(ROOT / "policies" / "default.yaml")
OPENED = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)

Event = Callable[[IncidentState, datetime], None]
Schedule = list[tuple[float, str]]

SEV1_SCHEDULE: Schedule = [
    (0, "pagerduty #1"),
    (5, "pagerduty #2"),
    (5, "response breach"),
    (10, "pagerduty #3"),
    (15, "phone #1"),
    (15, "mitigation breach"),
    (17, "phone #2"),
    (19, "sms #1"),
    (20, "sms #2"),
    (21, "sms #3"),
    (22, "chain exhausted"),
    (30, "management #leadership"),
    (60, "management cto@company.com, vp-engineering@company.com"),
]


def _minutes(at: datetime) -> float:
    return (at - OPENED) / timedelta(minutes=1)


def _describe(item: plan.Due) -> str:
    if isinstance(item, plan.Page):
        step = POLICY.escalation_policies.primary_oncall[item.step]
        return f"{step.type} #{item.attempt}" + (" (manual)" if item.manual else "")
    if isinstance(item, plan.ChainExhausted):
        return "chain exhausted" + (" (manual)" if item.manual else "")
    if isinstance(item, plan.Breach):
        return f"{item.kind} breach"
    if isinstance(item, plan.AutoResolve):
        return "auto-resolve"
    if isinstance(item, plan.AckTimeout):
        return f"ack timeout ({item.owner})"
    return f"management {POLICY.escalation_policies.management_escalation[item.index].target}"


def _record(state: IncidentState, item: plan.Due) -> None:
    """What IncidentWorkflow._page/_exhausted/_breach/_management do to the state."""
    if isinstance(item, plan.Page):
        plan.record_page(state, POLICY, item)
    elif isinstance(item, plan.ChainExhausted):
        plan.record_exhausted(state, item.manual)
    elif isinstance(item, plan.Breach):
        state.escalation.breaches.append(item.kind)
    elif isinstance(item, plan.Management):
        state.escalation.management_fired.append(item.index)
    else:
        raise AssertionError(f"the plan auto-resolved without alerts: {item}")


def _new_state(severity: str) -> IncidentState:
    return IncidentState(
        key="checkout-1", title="Checkout down", service="checkout", severity=severity, opened_at=OPENED
    )


def _drive(state: IncidentState, until_minutes: float = 24 * 60, events: dict[float, Event] | None = None) -> Schedule:
    """Run the plan from the incident's opening until nothing is left to wake for (or `until_minutes`)."""
    pending = sorted((events or {}).items())
    schedule: Schedule = []
    now = OPENED
    for _ in range(500):
        while pending and OPENED + timedelta(minutes=pending[0][0]) <= now:
            pending.pop(0)[1](state, now)
        for item in plan.due(state, POLICY, now):
            _record(state, item)
            schedule.append((_minutes(now), _describe(item)))
        wake = plan.next_wakeup(state, POLICY, now)
        candidates = [t for t in (wake, *(OPENED + timedelta(minutes=m) for m, _ in pending[:1])) if t]
        if not candidates or _minutes(min(candidates)) > until_minutes:
            return schedule
        assert min(candidates) >= now
        now = min(candidates)
    raise AssertionError(f"the plan never settled: {schedule}")


def _acknowledge(state: IncidentState, now: datetime) -> None:
    state.status = "acknowledged"
    state.acknowledged_by = "alice"
    state.acknowledged_at = now


def _escalate(state: IncidentState, now: datetime) -> None:
    state.escalation.pending_manual += 1


def _set_severity(severity: str) -> Event:
    def change(state: IncidentState, now: datetime) -> None:
        state.severity = severity

    return change


def test_sev1_schedule_follows_the_policy_to_the_minute() -> None:
    state = _new_state("sev1")
    assert _drive(state) == SEV1_SCHEDULE
    assert state.escalation.exhausted
    assert state.escalation_level == 3
    assert state.next_escalation_at is None
    assert state.escalation.breaches == ["response", "mitigation"]
    assert state.escalation.management_fired == [0, 1]
    # Nothing left to do: only a human can move the incident on.
    assert plan.next_wakeup(state, POLICY, OPENED + timedelta(hours=2)) is None
    assert plan.due(state, POLICY, OPENED + timedelta(hours=2)) == []


def test_first_page_is_due_at_opening_and_records_the_next() -> None:
    state = _new_state("sev1")
    assert plan.next_wakeup(state, POLICY, OPENED) == OPENED
    assert plan.due(state, POLICY, OPENED) == [plan.Page(step=0, attempt=1, due_at=OPENED)]
    plan.record_page(state, POLICY, plan.Page(step=0, attempt=1, due_at=OPENED))
    assert state.escalation_level == 1
    assert state.escalation.next_at == OPENED + timedelta(minutes=5)
    assert state.next_escalation_at == OPENED + timedelta(minutes=5)
    # Nothing is due between pages; the next wake-up is the retry, not earlier.
    assert plan.due(state, POLICY, OPENED + timedelta(minutes=4)) == []
    assert plan.next_wakeup(state, POLICY, OPENED + timedelta(minutes=1)) == OPENED + timedelta(minutes=5)


def test_a_late_wakeup_keeps_the_schedule() -> None:
    # Each page is due a fixed delay after the previous one was due, not after it was sent.
    state = _new_state("sev1")
    _record(state, plan.Page(step=0, attempt=1, due_at=OPENED))
    late = OPENED + timedelta(minutes=5, seconds=40)
    (page, _breach) = plan.due(state, POLICY, late)
    assert page == plan.Page(step=0, attempt=2, due_at=OPENED + timedelta(minutes=5))
    _record(state, page)
    assert state.escalation.next_at == OPENED + timedelta(minutes=10)


def test_sev3_never_pages_but_misses_its_targets() -> None:
    state = _new_state("sev3")
    assert _drive(state) == [(60, "response breach"), (120, "mitigation breach")]
    assert state.escalation.step == -1
    assert state.escalation_level == 0


def test_acknowledgement_stops_paging_but_not_management_escalation() -> None:
    state = _new_state("sev1")
    schedule = _drive(state, events={7: _acknowledge})
    assert schedule == [
        (0, "pagerduty #1"),
        (5, "pagerduty #2"),
        (5, "response breach"),
        # acknowledged at 7: no more pages, and the chain is never "exhausted"
        (15, "mitigation breach"),
        (30, "management #leadership"),
        (60, "management cto@company.com, vp-engineering@company.com"),
    ]
    assert not state.escalation.exhausted
    assert plan.next_page_at(state, POLICY) is None


def test_acknowledgement_before_the_target_is_no_response_breach() -> None:
    state = _new_state("sev1")
    schedule = _drive(state, events={3: _acknowledge})
    assert schedule == [
        (0, "pagerduty #1"),
        (15, "mitigation breach"),
        (30, "management #leadership"),
        (60, "management cto@company.com, vp-engineering@company.com"),
    ]


def test_resolution_stops_everything() -> None:
    def resolve(state: IncidentState, now: datetime) -> None:
        _acknowledge(state, now)
        state.status = "resolved"
        state.resolved_at = now

    state = _new_state("sev1")
    assert _drive(state, events={12: resolve}) == SEV1_SCHEDULE[:4]
    assert plan.due(state, POLICY, OPENED + timedelta(hours=5)) == []
    assert plan.next_wakeup(state, POLICY, OPENED + timedelta(minutes=12)) is None


def test_manual_escalation_jumps_to_the_next_step_now() -> None:
    state = _new_state("sev1")
    schedule = _drive(state, until_minutes=25, events={2: _escalate})
    assert schedule == [
        (0, "pagerduty #1"),
        # pagerduty's two remaining retries are skipped; phone's delay counts from the manual page
        (2, "phone #1 (manual)"),
        (4, "phone #2"),
        (5, "response breach"),
        (6, "sms #1"),
        (7, "sms #2"),
        (8, "sms #3"),
        (9, "chain exhausted"),
        (15, "mitigation breach"),
    ]
    assert state.escalation.pending_manual == 0


def test_manual_escalation_is_due_immediately() -> None:
    state = _new_state("sev1")
    _record(state, plan.Page(step=0, attempt=1, due_at=OPENED))
    now = OPENED + timedelta(minutes=1, seconds=30)
    _escalate(state, now)
    assert plan.next_wakeup(state, POLICY, now) == now
    assert plan.due(state, POLICY, now) == [plan.Page(step=1, attempt=1, due_at=now, manual=True)]


def test_escalating_at_the_last_step_exhausts_the_chain() -> None:
    state = _new_state("sev1")
    schedule = _drive(state, until_minutes=25, events={19.5: _escalate})
    assert schedule == [*SEV1_SCHEDULE[:8], (19.5, "chain exhausted (manual)")]
    assert state.escalation.exhausted
    assert state.escalation.pending_manual == 0
    assert state.next_escalation_at is None
    # Nothing more to escalate to: a further request pages nobody.
    _escalate(state, OPENED + timedelta(minutes=20))
    assert not [i for i in plan.due(state, POLICY, OPENED + timedelta(minutes=20)) if isinstance(i, plan.Page)]


def test_manual_escalation_of_a_non_paging_severity_pages_once() -> None:
    state = _new_state("sev3")
    schedule = _drive(state, until_minutes=180, events={10: _escalate})
    assert schedule == [(10, "pagerduty #1 (manual)"), (60, "response breach"), (120, "mitigation breach")]


def test_upgrade_to_sev1_late_fires_overdue_management_at_once_and_starts_paging() -> None:
    state = _new_state("sev3")
    schedule = _drive(state, events={45: _set_severity("sev1")})
    assert schedule == [
        (45, "pagerduty #1"),
        # sev1's targets (5 and 15 minutes from the opening) are long past
        (45, "response breach"),
        (45, "mitigation breach"),
        # "duration > 30 minutes" already holds: the step fires now, not 30 minutes from now
        (45, "management #leadership"),
        (50, "pagerduty #2"),
        (55, "pagerduty #3"),
        (60, "phone #1"),
        (60, "management cto@company.com, vp-engineering@company.com"),
        (62, "phone #2"),
        (64, "sms #1"),
        (65, "sms #2"),
        (66, "sms #3"),
        (67, "chain exhausted"),
    ]


def test_downgrade_to_sev3_stops_paging() -> None:
    state = _new_state("sev1")
    schedule = _drive(state, events={7: _set_severity("sev3")})
    assert schedule == [
        (0, "pagerduty #1"),
        (5, "pagerduty #2"),
        (5, "response breach"),
        # sev3's mitigation target is 2 hours; management steps need sev1
        (120, "mitigation breach"),
    ]
    assert plan.next_page_at(state, POLICY) is None
    assert not state.escalation.exhausted


@pytest.mark.parametrize(("severity", "pages"), [("sev1", True), ("sev2", True), ("sev3", False), ("sev4", False)])
def test_paging_severities(severity: str, pages: bool) -> None:
    assert plan.paging_active(_new_state(severity), POLICY) is pages
