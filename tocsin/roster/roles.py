"""Who may decide: a roster person who holds one of a decision's roles at that moment. Pure.

A role is what the policy names as approvers or reviewers: a person, a team (its members), a rotation (who
is on call for it then, overrides included), never a #channel. The name a caller gives must be a roster
person's key; a role's own name ("engineering_manager", "primary_oncall") is not a person and decides
nothing. A policy without a roster has no one to vouch for anybody: there, only a name the policy lists as
a role verbatim may decide, and docs/runbooks.md (approvals) says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from tocsin.policy.roster_schema import Roster
from tocsin.roster.resolve import resolve


def holders(roster: Roster, roles: Sequence[str], at: datetime) -> list[str]:
    """The person keys holding any of `roles` at `at`, in the roles' order, each once."""
    found: dict[str, None] = {}
    for role in roles:
        for person in resolve(roster, role, at).people:
            found.setdefault(person.id, None)
    return list(found)


def refusal(roster: Roster, who: str, roles: Sequence[str], at: datetime, what: str) -> str | None:
    """None when `who` may do `what`; else one sentence saying why not, naming who may."""
    listed = ", ".join(roles) or "nobody"
    if roster.is_empty():
        return None if who in roles else f"{who!r} may not {what}: the policy names {listed}"
    if who not in roster.people:
        return f"{who!r} is not a person in the roster, so may not {what} (the policy names {listed})"
    allowed = holders(roster, roles, at)
    if who in allowed:
        return None
    now = ", ".join(allowed) or "nobody"
    return f"{who!r} may not {what}: it takes {listed} (now {now})"
