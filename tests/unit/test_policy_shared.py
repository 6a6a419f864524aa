"""Equal policy snapshots decode to one shared Policy object; different ones stay apart; bad ones still fail."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tocsin.incident.contracts import IncidentInput
from tocsin.policy.schema import Policy
from tocsin.policy.shared import KEPT, shared_policy


def incident(policy: Policy, key: str = "k-1") -> IncidentInput:
    return IncidentInput(key=key, title="t", service="s", severity="sev3", policy=policy)


def test_equal_snapshots_share_one_object_and_equal_the_original(default_policy: Policy) -> None:
    raw = [incident(default_policy, f"k-{i}").model_dump_json() for i in range(3)]
    decoded = [IncidentInput.model_validate_json(r) for r in raw]
    assert decoded[0].policy is decoded[1].policy is decoded[2].policy
    assert decoded[0].policy == default_policy


def test_a_different_snapshot_gets_its_own_object(default_policy: Policy) -> None:
    # Policies are frozen: sharing one object between workflows can never let one change another's rules.
    intake = default_policy.intake.model_copy(update={"flap_window": default_policy.intake.flap_window * 2})
    other = default_policy.model_copy(update={"intake": intake})
    a = IncidentInput.model_validate_json(incident(default_policy).model_dump_json())
    b = IncidentInput.model_validate_json(incident(other).model_dump_json())
    assert a.policy is not b.policy
    assert b.policy.intake.flap_window == other.intake.flap_window


def test_an_invalid_snapshot_is_refused_as_before(default_policy: Policy) -> None:
    broken = incident(default_policy).model_dump(mode="json")
    broken["policy"]["lifecycle"]["default_severity"] = 7
    with pytest.raises(ValidationError, match="policy"):
        IncidentInput.model_validate(broken)


def test_a_policy_object_passes_through_untouched(default_policy: Policy) -> None:
    def never(value: object, outer: str | int | None = None) -> object:
        pytest.fail("a Policy is not validated a second time")

    assert shared_policy(default_policy, never) is default_policy
    assert incident(default_policy).policy is default_policy


def test_only_a_bounded_number_of_distinct_policies_are_kept(default_policy: Policy) -> None:
    from tocsin.policy import shared

    base = default_policy.model_dump(mode="json")
    for n in range(KEPT + 5):
        variant = {**base, "intake": {**base["intake"], "flap_window": f"{n + 1} minutes"}}
        IncidentInput.model_validate({**incident(default_policy).model_dump(mode="json"), "policy": variant})
    assert len(shared._parsed) == KEPT
