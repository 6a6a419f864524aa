"""Who may decide, as the policy's roster says at a given moment: the pure rule behind approvals and reviews."""

from __future__ import annotations

from datetime import UTC, datetime

from tocsin.policy.roster_schema import Roster
from tocsin.policy.schema import Policy
from tocsin.roster.roles import holders, refusal

# Monday 2026-11-30 10:00 Berlin: shift 99 of primary_oncall (weekly from 2025-01-06, alice, bob, carol, dave).
AT = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def test_a_team_role_is_held_by_its_members_only(default_policy: Policy) -> None:
    roster = default_policy.roster
    assert holders(roster, ["engineering_manager"], AT) == ["erin"]
    assert refusal(roster, "erin", ["engineering_manager"], AT, "approve") is None
    assert refusal(roster, "carol", ["engineering_manager"], AT, "approve") == (
        "'carol' may not approve: it takes engineering_manager (now erin)"
    )


def test_a_rotation_role_is_held_by_whoever_is_on_call_then(default_policy: Policy) -> None:
    roster = default_policy.roster
    (on_call,) = holders(roster, ["primary_oncall"], AT)
    others = [p for p in ("alice", "bob", "carol", "dave") if p != on_call]
    assert refusal(roster, on_call, ["primary_oncall"], AT, "approve") is None
    assert all(refusal(roster, p, ["primary_oncall"], AT, "approve") for p in others)


def test_a_role_name_or_a_stranger_is_nobody(default_policy: Policy) -> None:
    roster = default_policy.roster
    for who in ("primary_oncall", "engineering_manager", "mallory", "#sre-alerts"):
        why = refusal(roster, who, ["primary_oncall", "engineering_manager"], AT, "approve")
        assert why == f"{who!r} is not a person in the roster, so may not approve (the policy names " + (
            "primary_oncall, engineering_manager)"
        )


def test_without_a_roster_only_a_name_the_policy_lists_decides() -> None:
    assert refusal(Roster(), "erin", ["erin"], AT, "approve") is None
    assert refusal(Roster(), "mallory", ["erin"], AT, "approve") == "'mallory' may not approve: the policy names erin"
