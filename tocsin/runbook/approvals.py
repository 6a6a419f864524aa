"""Who may decide a runbook's approval step: a person of the roster who holds an approving role at that moment.

Pure (the caller passes `now`), so the runbook workflow's `approve_step` validator calls it as it is. An
approver of a step is a person named as one, a member of an approving team, or whoever is on call now for an
approving rotation (overrides included). Typing a rotation's or a team's name, or a name the roster does not
have, is nobody: `by` is checked against people, never compared as text with the approvers.
"""

from __future__ import annotations

from datetime import datetime

from tocsin.policy.roster_schema import Roster
from tocsin.roster import resolve
from tocsin.runbook.plan_contracts import PlannedApproval


def approvers_now(roster: Roster, step: PlannedApproval, now: datetime) -> list[str]:
    """The ids of the people who may decide `step` at `now`, in the order of the step's approvers."""
    holders: dict[str, None] = {}
    for approver in step.approvers:
        holders.update({person.id: None for person in resolve(roster, approver, now).people})
    return list(holders)


def approver_problem(roster: Roster, step: PlannedApproval, who: str, now: datetime) -> str | None:
    """Why `who` may not decide `step` at `now` (a message for the person who asked), or None when they may."""
    approvers = ", ".join(step.approvers)
    if who not in roster.people:
        return f"{who!r} is not an approver of {step.name} ({approvers}): not a person of the roster"
    holders = approvers_now(roster, step, now)
    if who in holders:
        return None
    return f"{who!r} is not an approver of {step.name} ({approvers}; now: {', '.join(holders) or 'nobody'})"
