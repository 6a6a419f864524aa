"""The escalation plan as pure functions of (incident state, policy, now).

The workflow asks "what is due now?" and "when should I wake next?"; everything that decides who is
paged and when lives here, testable without Temporal and replayable inside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from tocsin.incident.contracts import EscalationCursor, IncidentState
from tocsin.maintenance.windows import hold_ends_at, holding
from tocsin.policy.conditions import IncidentFacts, all_hold, first_time_all_hold
from tocsin.policy.schema import Policy


@dataclass(frozen=True)
class Page:
    step: int
    attempt: int
    due_at: datetime
    manual: bool = False


@dataclass(frozen=True)
class ChainExhausted:
    manual: bool = False


@dataclass(frozen=True)
class Breach:
    kind: Literal["response", "mitigation"]
    target: timedelta


@dataclass(frozen=True)
class Management:
    index: int


@dataclass(frozen=True)
class AutoResolve:
    quiet_since: datetime


@dataclass(frozen=True)
class AckTimeout:
    """Acknowledged, then neither mitigated nor resolved in time: page the owner again, then resume the chain."""

    owner: str


Due = Page | ChainExhausted | Breach | Management | AutoResolve | AckTimeout


def snoozed(state: IncidentState, now: datetime) -> bool:
    return state.snoozed_until is not None and now < state.snoozed_until


def auto_resolve_at(state: IncidentState, policy: Policy) -> datetime | None:
    """When an incident whose alerts have all resolved closes itself; None while any fires or a human holds it."""
    if state.alerts_resolved_at is None or not state.alerts:
        return None
    if policy.intake.hold_when_acknowledged and state.acknowledged_at is not None:
        return None
    return state.alerts_resolved_at + policy.intake.flap_window


def facts(state: IncidentState, now: datetime) -> IncidentFacts:
    return IncidentFacts(
        severity=state.severity,
        status=state.status,
        service=state.service,
        duration=now - state.opened_at,
        escalation_level=state.escalation_level,
        acknowledged=state.acknowledged_at is not None,
    )


def paging_active(state: IncidentState, policy: Policy) -> bool:
    """The chain runs while nobody has responded, for the severities that page."""
    return state.status == "triggered" and policy.pages(state.severity) and not state.escalation.exhausted


def _next_automatic(state: IncidentState, policy: Policy, now: datetime) -> Page | ChainExhausted:
    # Each page is due a fixed delay after the previous one was *due*, not after it was sent, so time
    # spent delivering never makes the schedule drift from what the policy says.
    cursor = state.escalation
    steps = policy.escalation_policies.primary_oncall
    if cursor.step < 0:
        return Page(0, 1, due_at=now)
    due_at = cursor.next_at or now
    if state.snoozed_until is not None and state.snoozed_until > due_at:
        # Resumed after a snooze: the chain goes on from the snooze's end, not with every page it held back.
        due_at = state.snoozed_until
    if cursor.attempt < steps[cursor.step].retry_count:
        return Page(cursor.step, cursor.attempt + 1, due_at)
    if cursor.step + 1 < len(steps):
        return Page(cursor.step + 1, 1, due_at)
    return ChainExhausted()


def next_manual(cursor: EscalationCursor, policy: Policy, now: datetime) -> Page | ChainExhausted:
    """`escalate` jumps to the next step now, whatever the retries left on this one."""
    if cursor.step + 1 < len(policy.escalation_policies.primary_oncall):
        return Page(cursor.step + 1, 1, due_at=now, manual=True)
    return ChainExhausted(manual=True)


def _targets(state: IncidentState, policy: Policy) -> tuple[datetime, datetime]:
    level = policy.severity(state.severity)
    # Held by a maintenance window from its opening: nobody could respond before the catch-up page.
    released = state.maintenance.released_at
    since = max(state.opened_at, released) if released else state.opened_at
    return since + level.response_time, since + level.escalation_time


def due(state: IncidentState, policy: Policy, now: datetime) -> list[Due]:
    """Everything that should happen at `now`, in the order it should be recorded."""
    if state.status == "resolved":
        return []
    quiet_until = auto_resolve_at(state, policy)
    if quiet_until is not None and now >= quiet_until:
        assert state.alerts_resolved_at is not None
        return [AutoResolve(state.alerts_resolved_at)]
    if state.paging_held:
        # A storm member: its storm incident pages, tells and escalates for it (tocsin.storm.consolidation).
        return []
    out: list[Due] = []
    cursor = state.escalation
    if holding(state, policy, now) is not None:
        # A maintenance window: nobody is paged, no target is missed; a person's explicit escalation still pages.
        return [next_manual(cursor, policy, now)] if cursor.pending_manual and not cursor.exhausted else []
    if state.status == "acknowledged" and state.ack_deadline is not None and now >= state.ack_deadline:
        out.append(AckTimeout(state.owner or state.acknowledged_by or ""))
    if cursor.pending_manual and not cursor.exhausted:
        # A person asked for it: a snooze does not hold back an escalation someone requested.
        out.append(next_manual(cursor, policy, now))
    elif (
        paging_active(state, policy)
        and not snoozed(state, now)
        and (cursor.step < 0 or (cursor.next_at and now >= cursor.next_at))
    ):
        out.append(_next_automatic(state, policy, now))
    level = policy.severity(state.severity)
    response_due, mitigation_due = _targets(state, policy)
    if state.acknowledged_at is None and "response" not in cursor.breaches and now >= response_due:
        out.append(Breach("response", level.response_time))
    if state.mitigated_at is None and "mitigation" not in cursor.breaches and now >= mitigation_due:
        out.append(Breach("mitigation", level.escalation_time))
    current = facts(state, now)
    for i, step in enumerate(policy.escalation_policies.management_escalation):
        if i not in cursor.management_fired and all_hold(step.conditions, current):
            out.append(Management(i))
    return out


def next_wakeup(state: IncidentState, policy: Policy, now: datetime) -> datetime | None:
    """The earliest moment something in the plan falls due; None when only a human can move it on."""
    if state.status == "resolved":
        return None
    cursor = state.escalation
    times: list[datetime] = []
    quiet_until = auto_resolve_at(state, policy)
    if quiet_until is not None:
        times.append(quiet_until)
    if state.paging_held:
        return max(quiet_until, now) if quiet_until is not None else None
    if cursor.pending_manual and not cursor.exhausted:
        times.append(now)
    window = holding(state, policy, now)
    if window is not None:
        # Held: look again when the window ends (the registry's signal wakes the incident if it ends early).
        end = hold_ends_at(window, now)
        times.extend([end] if end else [])
        return max(min(times), now) if times else None
    if paging_active(state, policy):
        page_at = cursor.next_at if cursor.step >= 0 and cursor.next_at else now
        times.append(max(page_at, state.snoozed_until) if state.snoozed_until else page_at)
    if state.status == "acknowledged" and state.ack_deadline is not None:
        times.append(state.ack_deadline)
    response_due, mitigation_due = _targets(state, policy)
    if state.acknowledged_at is None and "response" not in cursor.breaches:
        times.append(response_due)
    if state.mitigated_at is None and "mitigation" not in cursor.breaches:
        times.append(mitigation_due)
    current = facts(state, now)
    for i, step in enumerate(policy.escalation_policies.management_escalation):
        if i not in cursor.management_fired:
            at = first_time_all_hold(step.conditions, current, state.opened_at)
            if at is not None:
                times.append(at)
    return max(min(times), now) if times else None


def record_page(state: IncidentState, policy: Policy, page: Page) -> None:
    """Move the cursor past a page that was just sent."""
    cursor = state.escalation
    step = policy.escalation_policies.primary_oncall[page.step]
    cursor.step, cursor.attempt = page.step, page.attempt
    cursor.next_at = page.due_at + step.escalation_delay
    if page.manual:
        cursor.pending_manual = max(cursor.pending_manual - 1, 0)
    state.escalation_level = page.step + 1
    state.next_escalation_at = next_page_at(state, policy)


def next_page_at(state: IncidentState, policy: Policy) -> datetime | None:
    """When the chain will page next if nobody acts; None once paging has stopped."""
    cursor = state.escalation
    if not (paging_active(state, policy) and cursor.step >= 0 and cursor.next_at):
        return None
    return max(cursor.next_at, state.snoozed_until) if state.snoozed_until else cursor.next_at


def record_ack_timeout(state: IncidentState, policy: Policy, now: datetime) -> None:
    """Back to paging: the acknowledgement lapsed. The chain resumes one step delay from now, so the owner, paged
    again first, has that long to answer before the next level is paged."""
    state.status = "triggered"
    state.ack_deadline = None
    cursor = state.escalation
    steps = policy.escalation_policies.primary_oncall
    if cursor.step >= 0 and not cursor.exhausted:
        cursor.next_at = now + steps[cursor.step].escalation_delay
    state.next_escalation_at = next_page_at(state, policy)


def record_exhausted(state: IncidentState, manual: bool) -> None:
    cursor = state.escalation
    cursor.exhausted = True
    cursor.next_at = None
    if manual:
        cursor.pending_manual = 0
    state.next_escalation_at = None
