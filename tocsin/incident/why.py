"""Why was someone paged, or not: every notification decision of an incident, read back from its timeline.

The timeline already says what happened ("page" entries carry the roster's reason, "delivered" and
"delivery_failed" the receipts); this module puts each delivery beside the decision that caused it. For one
person it also lists the moments they were not paged and why, recomputed with the roster's pure functions at
each page time: the timeline records who was paged, never who was not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from tocsin.incident.contracts import IncidentState, TimelineEntry
from tocsin.policy.schema import Policy
from tocsin.roster import ResolvedTarget, on_call, people_by_address, resolve, schedule

_PAGE = re.compile(r"^level (\d+): paging (\S+) via (\S+) \((.*?)\)(?: \((.*)\))?$")
_NOBODY = re.compile(r"^level (\d+): nobody to page via (\S+)(?: \((.*)\))?; next level now$")
_DELIVERY = re.compile(r"^(\S+) → (.+?): (.*)$", re.DOTALL)
_MANAGEMENT = re.compile(r"^management escalation via (\S+) to (.+)$")
_STEP_KINDS = {
    "page": "page",
    "ack-timeout": "ack_timeout",
    "management": "management",
    "sync": "sync",
    "action": "action",
    "respond": "action",
}
_RECENT = 20
# How far ahead a person's next shift is looked for: a rotation longer than this says nothing useful.
_SHIFT_HORIZON = timedelta(weeks=8)


@dataclass(frozen=True)
class Decision:
    """One row: a delivery and the decision behind it, or (with a person) a moment they were not paged."""

    at: datetime
    level: int
    kind: str  # page, ack_timeout, management, stakeholders, action, sync, held, catch_up, not_paged
    who: str
    channel: str
    outcome: str
    reason: str


@dataclass
class _Context:
    """The decision a delivery belongs to: deliveries follow their page, management or sync entry."""

    kind: str
    level: int
    channel: str
    target: str
    reason: str
    people: frozenset[str]


def decisions(state: IncidentState, policy: Policy, person: str | None = None) -> list[Decision]:
    """Every notification decision in timeline order; with `person`, also when and why they were not paged."""
    book = people_by_address(policy.roster)
    rows: list[Decision] = []
    context: _Context | None = None
    # Recent decisions: several syncs (or a page and an automatic action) are recorded before their deliveries.
    recent: list[_Context] = []
    level = 0
    acknowledged = False
    for index, entry in enumerate(state.timeline):
        if entry.kind == "page":
            context, row = _page(entry, policy)
            level = context.level
            if row is not None:
                rows.append(row)
            if person is not None and person not in context.people and not acknowledged:
                rows.append(_not_paged_by_page(entry, context, policy, person))
        elif entry.kind == "ack_timeout":
            acknowledged = False  # the chain resumes after the re-page: its pages count again
            owner = state.owner or state.acknowledged_by or "the owner"
            context = _Context("ack_timeout", level, "", owner, f"ack-timeout re-page: {entry.text}", frozenset())
        elif entry.kind == "management" and (found := _MANAGEMENT.match(entry.text)):
            reason = f"management escalation: {entry.text}"
            context = _Context("management", level, found.group(1), found.group(2), reason, frozenset())
        elif entry.kind == "sync":
            context = _Context("sync", level, entry.text.split(" ", 1)[0], "", f"follow-up: {entry.text}", frozenset())
        elif entry.kind in ("held", "catch_up"):
            rows.append(_maintenance(entry, level, person))
        elif entry.kind in ("delivered", "delivery_failed"):
            after = state.timeline[index + 1 :]
            belongs = _by_step(entry, recent, after) if entry.step else _belongs(entry, context, book, after)
            rows.append(_delivery(entry, level, belongs, book))
        elif person is not None:
            rows.extend(_not_paged_by_event(entry, state, policy, person, level, acknowledged))
            # `take` acknowledges an unacknowledged incident without an "acknowledged" entry of its own.
            acknowledged = acknowledged or entry.kind in ("acknowledged", "owner")
        if context is not None and (not recent or recent[-1] is not context):
            recent = [*recent[-(_RECENT - 1) :], context]
    return rows


def _step_kind(step: str) -> str:
    """The decision a delivery's step names: page/0/1, ack-timeout/1, management/0, sync/3/slack, action/x,
    respond/0/#ops; every other step is a stakeholder notice (breach/…, exhausted/…, resolved/…)."""
    prefix = step.split("/", 1)[0]
    return _STEP_KINDS.get(prefix, "stakeholders")


def _by_step(entry: TimelineEntry, recent: list[_Context], after: list[TimelineEntry]) -> tuple[str, str]:
    """A delivery that names its step: the latest decision of that kind on its channel gives the reason (the
    page's roster reason, the sync's change); notices and actions are recorded after their deliveries."""
    assert entry.step is not None
    kind = _step_kind(entry.step)
    found = _DELIVERY.match(entry.text)
    channel = found.group(1) if found else ""
    if kind in ("page", "ack_timeout", "management", "sync"):
        for context in reversed(recent):
            if context.kind == kind and context.channel in ("", channel):
                return kind, context.reason
        return kind, entry.step
    for later in after:
        if later.kind == "notify":
            return kind, f"stakeholder notice: {later.text}"
        if later.kind == "action":
            return kind, f"automatic action: {later.text}"
    return kind, entry.step


def _maintenance(entry: TimelineEntry, level: int, person: str | None) -> Decision:
    """A maintenance window took hold of the pages (nobody, this person included, is paged while it holds),
    or ended: the catch-up page follows."""
    if entry.kind == "catch_up":
        return Decision(entry.at, level, "catch_up", person or "-", "-", "catch-up page next", entry.text)
    kind = "not_paged" if person is not None else "held"
    return Decision(entry.at, level, kind, person or "-", "-", "not paged", f"maintenance window: {entry.text}")


def _page(entry: TimelineEntry, policy: Policy) -> tuple[_Context, Decision | None]:
    if found := _PAGE.match(entry.text):
        level, target, channel, how, reason = found.groups()
        people = _people(resolve(policy.roster, target, entry.at)) if not policy.roster.is_empty() else frozenset()
        why = f"{how}; {reason}" if reason else how
        return _Context("page", int(level), channel, target, why, people), None
    if found := _NOBODY.match(entry.text):
        level, channel, reason = found.groups()
        row = Decision(entry.at, int(level), "page", "-", channel, "nobody to page", reason or entry.text)
        return _Context("page", int(level), channel, "", reason or "", frozenset()), row
    return _Context("page", 0, "", "", entry.text, frozenset()), None


def _people(resolved: ResolvedTarget) -> frozenset[str]:
    return frozenset(p.id for p in resolved.people)


def _belongs(
    entry: TimelineEntry, context: _Context | None, book: dict[str, str], after: list[TimelineEntry]
) -> tuple[str, str]:
    """The reason of the decision this delivery belongs to. A page's, management's or sync's deliveries follow
    their entry on the same channel; stakeholder notices and automatic actions are recorded after their
    deliveries, so those are found by looking ahead to the next such entry."""
    found = _DELIVERY.match(entry.text)
    channel, target = (found.group(1), found.group(2)) if found else ("", "")
    if context is not None and context.channel in ("", channel):
        fits = (
            context.kind != "page"
            or book.get(target) in context.people
            or target == context.target
            or not context.people
        )
        if fits:
            return context.kind, context.reason
    for later in after:
        if later.kind == "notify":
            return "stakeholders", f"stakeholder notice: {later.text}"
        if later.kind == "action":
            return "action", f"automatic action: {later.text}"
        if later.kind in ("page", "management", "sync", "ack_timeout"):
            break
    return "other", "-"


def _delivery(entry: TimelineEntry, level: int, belongs: tuple[str, str], book: dict[str, str]) -> Decision:
    kind, reason = belongs
    found = _DELIVERY.match(entry.text)
    channel, target, detail = found.groups() if found else ("-", "-", entry.text)
    who = book.get(target, target)
    outcome = f"delivered: {detail}" if entry.kind == "delivered" else f"failed: {detail}"
    return Decision(entry.at, level, kind, who, channel, outcome, reason)


def _not_paged_by_page(entry: TimelineEntry, context: _Context, policy: Policy, person: str) -> Decision:
    """A page went out and `person` was not among those it reached: say who was and why not them."""
    roster = policy.roster
    target = context.target
    kind = roster.target_kind(target) if target else None
    name = target.partition(":")[2] or target if ":" in target else target
    if kind == "rotation":
        shift, segment = on_call(roster, name, entry.at)
        who = segment.person or "nobody"
        window = f"shift {shift.index}, {segment.start:%Y-%m-%d %H:%M}Z → {segment.end:%Y-%m-%d %H:%M}Z"
        cover = " (override)" if segment.override is not None else ""
        reason = f"not on call for {name}: {who} was{cover} ({window}){_next_shift(policy, name, person, entry.at)}"
    elif kind == "team":
        reason = f"not a member of team {name}"
    elif kind == "person":
        reason = f"the level pages {name} only"
    else:
        reason = f"the level pages {target or 'nobody'}"
    return Decision(entry.at, context.level, "not_paged", person, context.channel, "not paged", reason)


def _next_shift(policy: Policy, rotation: str, person: str, at: datetime) -> str:
    for segment in schedule(policy.roster, rotation, at, at + _SHIFT_HORIZON):
        if segment.person == person and segment.start > at:
            return f"; {person}'s next shift begins {segment.start:%Y-%m-%d %H:%M}Z"
    return ""


def _not_paged_by_event(
    entry: TimelineEntry, state: IncidentState, policy: Policy, person: str, level: int, acknowledged: bool
) -> list[Decision]:
    """Entries after which paging stops or pauses: an acknowledgement, a snooze, a storm's hold, the chain's end."""

    def row(reason: str) -> list[Decision]:
        return [Decision(entry.at, level, "not_paged", person, "-", "not paged", reason)]

    stops = entry.kind == "acknowledged" or (entry.kind == "owner" and not acknowledged)
    if stops and entry.by != person:
        later = _later_levels(policy, person, level, entry.at)
        return row(f"already acknowledged by {entry.by} at {entry.at:%Y-%m-%d %H:%M:%S}Z; paging stopped{later}")
    if entry.kind == "snoozed":
        # The entry says until when (state.snoozed_until holds only the latest snooze).
        return row(f"snoozed: {entry.text}")
    if entry.kind == "storm" and "paging held" in entry.text:
        return row(f"storm-held: {entry.text}")
    if entry.kind == "chain_exhausted":
        return row("chain exhausted: every level was paged without them")
    if entry.kind == "resolved" and state.acknowledged_at is None:
        later = _later_levels(policy, person, level, entry.at)
        if later:
            return row(f"resolved before the chain went on{later}")
    return []


def _later_levels(policy: Policy, person: str, level: int, at: datetime) -> str:
    """The levels past `level` that would have reached `person` at `at`: the chain stopped before them."""
    if policy.roster.is_empty():
        return ""
    steps = policy.escalation_policies.primary_oncall
    later = [
        str(n)
        for n, step in enumerate(steps, start=1)
        if n > level and person in _people(resolve(policy.roster, step.target, at))
    ]
    return f" before level {', '.join(later)}, which would have paged them" if later else ""
