"""tocsin.incident.why on hand-built timelines, written the way the incident workflow writes them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tocsin.cli.output import render, table
from tocsin.cli.why import HEADERS, _cells
from tocsin.incident.contracts import IncidentState, TimelineEntry
from tocsin.incident.why import decisions
from tocsin.policy.schema import Policy
from tocsin.roster import on_call, resolve

# A Thursday: the primary rotation (weekly, Monday 09:00 Berlin) is mid-shift, the secondary (daily) too.
OPENED = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
PEOPLE = ["alice", "bob", "carol", "dave"]


@pytest.fixture
def policy(default_policy: Policy) -> Policy:
    """The default policy with level 2 paging the secondary rotation: two levels, two people."""
    steps = list(default_policy.escalation_policies.primary_oncall)
    steps[1] = steps[1].model_copy(update={"target": "secondary_oncall"})
    chain = default_policy.escalation_policies.model_copy(update={"primary_oncall": steps})
    return default_policy.model_copy(update={"escalation_policies": chain})


def page(policy: Policy, level: int, at: datetime, how: str) -> list[TimelineEntry]:
    """A page entry and its delivery, as workflows/incident/escalation.py and deliveries.py record them."""
    step = policy.escalation_policies.primary_oncall[level - 1]
    resolved = resolve(policy.roster, step.target, at)
    person = resolved.people[0]
    address = person.pagerduty if step.type == "pagerduty" else person.phone
    text = f"level {level}: paging {step.target} via {step.type} ({how}) ({resolved.reason})"
    return [
        TimelineEntry(at=at, kind="page", text=text),
        TimelineEntry(at=at, kind="delivered", text=f"{step.type} → {address}: outbox-{level}"),
    ]


def incident(timeline: list[TimelineEntry], **fields: object) -> IncidentState:
    return IncidentState.model_validate(
        {"key": "checkout-1", "title": "Checkout down", "service": "checkout", "severity": "sev1"}
        | {"opened_at": OPENED, "timeline": timeline}
        | fields
    )


def on_call_now(policy: Policy, rotation: str, at: datetime) -> str:
    person = on_call(policy.roster, rotation, at)[1].person
    assert person is not None
    return person


def test_each_delivery_names_its_level_person_channel_receipt_and_reason(policy: Policy) -> None:
    level2_at = OPENED + timedelta(minutes=15)
    timeline = [
        TimelineEntry(at=OPENED, kind="opened", text="Checkout down (from cli)"),
        *page(policy, 1, OPENED, "attempt 1/3"),
        TimelineEntry(at=OPENED, kind="delivered", text="slack → #sre-alerts: outbox-s"),
        TimelineEntry(at=OPENED, kind="delivery_failed", text="email → erin@company.com: smtp refused"),
        TimelineEntry(at=OPENED, kind="notify", text="stakeholders told (sre, engineering_manager): opened"),
        *page(policy, 2, level2_at, "attempt 1/2"),
    ]
    rows = decisions(incident(timeline), policy)
    primary = on_call_now(policy, "primary_oncall", OPENED)
    secondary = on_call_now(policy, "secondary_oncall", level2_at)
    assert [(r.level, r.kind, r.who, r.channel) for r in rows] == [
        (1, "page", primary, "pagerduty"),
        (1, "stakeholders", "#sre-alerts", "slack"),
        (1, "stakeholders", "erin", "email"),
        (2, "page", secondary, "phone"),
    ]
    assert rows[0].outcome == "delivered: outbox-1"
    assert rows[0].reason.startswith(f"attempt 1/3; {primary} is on call for primary_oncall (weekly shift")
    assert rows[2].outcome == "failed: smtp refused"
    assert rows[2].reason.startswith("stakeholder notice: stakeholders told")
    assert rows[3].at == level2_at and "secondary_oncall" in rows[3].reason


def test_management_and_ack_timeout_deliveries_carry_their_reason(policy: Policy) -> None:
    later = OPENED + timedelta(minutes=31)
    timeline = [
        *page(policy, 1, OPENED, "attempt 1/3"),
        TimelineEntry(at=later, kind="management", text="management escalation via slack to #leadership"),
        TimelineEntry(at=later, kind="delivered", text="slack → #leadership: outbox-m"),
        TimelineEntry(at=later, kind="ack_timeout", text="acknowledged by bob but neither mitigated nor resolved"),
        TimelineEntry(at=later, kind="delivered", text="pagerduty → PBOB002: outbox-a"),
    ]
    rows = decisions(incident(timeline, owner="bob"), policy)
    assert [(r.kind, r.who) for r in rows[1:]] == [("management", "#leadership"), ("ack_timeout", "bob")]
    assert rows[1].reason.startswith("management escalation")
    assert rows[2].reason.startswith("ack-timeout re-page")


def test_nobody_to_page_is_a_decision_too(policy: Policy) -> None:
    text = "level 1: nobody to page via sms (nobody is on call for empty: the rotation has no members); next level now"
    rows = decisions(incident([TimelineEntry(at=OPENED, kind="page", text=text)]), policy)
    assert [(r.level, r.outcome, r.channel) for r in rows] == [(1, "nobody to page", "sms")]


def test_a_person_off_shift_hears_who_was_on_call(policy: Policy) -> None:
    primary = on_call_now(policy, "primary_oncall", OPENED)
    off = next(p for p in PEOPLE if p != primary)
    rows = decisions(incident(page(policy, 1, OPENED, "attempt 1/3")), policy, off)
    [missed] = [r for r in rows if r.kind == "not_paged"]
    assert missed.who == off and missed.at == OPENED and missed.level == 1
    assert missed.reason.startswith(f"not on call for primary_oncall: {primary} was (shift ")
    assert f"{off}'s next shift begins" in missed.reason
    # The person paged has no such row.
    rows = decisions(incident(page(policy, 1, OPENED, "attempt 1/3")), policy, primary)
    assert not [r for r in rows if r.kind == "not_paged"]


def test_acknowledged_snoozed_storm_held_and_exhausted(policy: Policy) -> None:
    primary = on_call_now(policy, "primary_oncall", OPENED)
    off = next(p for p in PEOPLE if p != primary)
    timeline = [
        TimelineEntry(at=OPENED, kind="storm", text="storm of 21; paging held: the storm incident s-1 pages for it"),
        *page(policy, 1, OPENED, "attempt 1/3"),
        TimelineEntry(at=OPENED, kind="snoozed", text="paging snoozed by erin for 40m, until 12:40:00Z", by="erin"),
        TimelineEntry(at=OPENED, kind="chain_exhausted", text="primary on-call chain exhausted"),
        TimelineEntry(at=OPENED, kind="acknowledged", text="acknowledged by erin; paging stopped", by="erin"),
        *page(policy, 1, OPENED + timedelta(minutes=5), "attempt 2/3"),
    ]
    rows = decisions(incident(timeline), policy, off)
    reasons = [r.reason for r in rows if r.kind == "not_paged"]
    assert reasons[0].startswith("storm-held: ")
    assert reasons[1].startswith("not on call")
    assert reasons[2] == "snoozed: paging snoozed by erin for 40m, until 12:40:00Z"
    assert reasons[3] == "chain exhausted: every level was paged without them"
    assert reasons[4].startswith("already acknowledged by erin at 2026-12-03 12:00:00Z")
    # After the acknowledgement, pages (re-pages) are not counted as moments the person was passed over.
    assert len(reasons) == 5


def test_taking_over_stops_paging_like_an_acknowledgement(policy: Policy) -> None:
    primary = on_call_now(policy, "primary_oncall", OPENED)
    off = next(p for p in PEOPLE if p != primary)
    timeline = [
        *page(policy, 1, OPENED, "attempt 1/3"),
        TimelineEntry(at=OPENED, kind="owner", text="erin took over", by="erin"),
        TimelineEntry(at=OPENED, kind="owner", text="grace took over from erin", by="grace"),
    ]
    reasons = [r.reason for r in decisions(incident(timeline), policy, off) if r.kind == "not_paged"]
    assert len(reasons) == 2 and reasons[1].startswith("already acknowledged by erin")


def test_chain_stopped_before_the_level_that_would_have_paged_them(policy: Policy) -> None:
    secondary = on_call_now(policy, "secondary_oncall", OPENED)
    primary = on_call_now(policy, "primary_oncall", OPENED)
    if secondary == primary:
        pytest.skip("the same person holds both rotations at this instant")
    timeline = [
        *page(policy, 1, OPENED, "attempt 1/3"),
        TimelineEntry(at=OPENED, kind="acknowledged", text=f"acknowledged by {primary}", by=primary),
    ]
    rows = decisions(incident(timeline), policy, secondary)
    assert rows[-1].reason.endswith("before level 2, which would have paged them")


def test_rows_render_as_a_table(policy: Policy) -> None:
    rows = decisions(incident(page(policy, 1, OPENED, "attempt 1/3")), policy)
    text = render(table(HEADERS, [_cells(r) for r in rows]))
    assert text.splitlines()[0].split() == [h.upper() for h in HEADERS]
    assert "2026-12-03 12:00:00Z  1      page" in text


def test_a_delivery_that_names_its_step_belongs_to_that_decision(policy: Policy) -> None:
    """The page and an automatic action page the same person on the same channel; two syncs are recorded
    before either delivery: each delivery still finds its own decision, by the step it carried out."""
    first = page(policy, 1, OPENED, "attempt 1/3")
    first[1] = first[1].model_copy(update={"step": "page/0/1"})
    address = first[1].text.split(" → ")[1].split(":")[0]
    timeline = [
        *first,
        TimelineEntry(at=OPENED, kind="delivered", text=f"pagerduty → {address}: outbox-a", step="action/emergency"),
        TimelineEntry(at=OPENED, kind="action", text="trigger_emergency_response: pagerduty primary_oncall"),
        TimelineEntry(at=OPENED, kind="sync", text="pagerduty PD1: triggered → acknowledged"),
        TimelineEntry(at=OPENED, kind="sync", text="slack #war-room: triggered → acknowledged"),
        TimelineEntry(at=OPENED, kind="delivered", text="pagerduty → PD1: outbox-s1", step="sync/1/pagerduty"),
        TimelineEntry(at=OPENED, kind="delivered", text="slack → #war-room: outbox-s2", step="sync/1/slack"),
    ]
    rows = decisions(incident(timeline), policy)
    assert [(r.kind, r.reason.split(":")[0]) for r in rows] == [
        ("page", "attempt 1/3; dave is on call for primary_oncall (weekly shift 99, since Mon 2026-11-30 09"),
        ("action", "automatic action"),
        ("sync", "follow-up"),
        ("sync", "follow-up"),
    ]
    assert rows[2].reason == "follow-up: pagerduty PD1: triggered → acknowledged"
    assert rows[3].reason == "follow-up: slack #war-room: triggered → acknowledged"
