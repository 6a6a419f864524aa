"""The on-call roster: who an escalation target is at an instant (pure, see tocsin.roster.resolve). The overrides
file that `tocsin oncall override` writes is read with the policy (tocsin.policy.overrides; not for workflows).

The roster's schema (people, teams, rotations, overrides) is part of the policy: tocsin.policy.schema.
"""

from tocsin.roster.resolve import Contact, ResolvedTarget, TargetKind, people_by_address, resolve
from tocsin.roster.shifts import Segment, Shift, active_override, handoff_at, local_text, on_call, schedule, shift_at

__all__ = [
    "Contact",
    "ResolvedTarget",
    "Segment",
    "Shift",
    "TargetKind",
    "active_override",
    "handoff_at",
    "local_text",
    "on_call",
    "people_by_address",
    "resolve",
    "schedule",
    "shift_at",
]
