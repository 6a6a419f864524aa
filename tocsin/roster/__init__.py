"""The on-call roster: who an escalation target is at an instant (pure, see tocsin.roster.resolve), and the
overrides file that `tocsin oncall override` writes (I/O, see tocsin.roster.overrides; not for workflows).

The roster's schema (people, teams, rotations, overrides) is part of the policy: tocsin.policy.models.
"""

from tocsin.roster.resolve import (
    Contact,
    ResolvedTarget,
    Segment,
    Shift,
    TargetKind,
    active_override,
    handoff_at,
    local_text,
    on_call,
    resolve,
    schedule,
    shift_at,
)

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
    "resolve",
    "schedule",
    "shift_at",
]
