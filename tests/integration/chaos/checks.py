"""What every chaos case checks, from the vendors' ledger: 0 lost pages, 0 duplicate external effects, and
escalation on the policy's schedule; and the figures each case reports.

The schedule is derived here from the policy as docs/configuration.md states the rules, not from Tocsin's own planner
(tocsin/policy/escalation.py), so the planner is checked, not echoed: each primary step notifies `retry_count`
times `escalation_delay` apart, then the next step; the chain is exhausted after the last wait; the targets are
missed at `response_time` and `escalation_time`; a management step fires when its `duration > 'X'` holds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tests.integration.chaos.vendors import Ledger, step_of
from tocsin.durations import parse_duration
from tocsin.policy.schema import Policy

# How late a step may arrive at its vendor on this 2-core machine with nothing killed: timers on a real server
# fire up to about a second late, and a delivery takes a moment.
ON_TIME = 3.0
# After an outage the incident sends what fell due one page per pass of its loop, each pass at least a second
# apart (workflows/incident/workflow.py `_sleep_until_due`): the n-th overdue page may go out n times this much later.
CATCH_UP = 1.5


@dataclass(frozen=True)
class Due:
    step: str  # the idempotency key's step, as the vendor sees it (`page/1/1`, `breach/response/sre`)
    offset: float  # seconds after the incident opened


def page_schedule(policy: Policy) -> list[Due]:
    pages, at = [], 0.0
    for i, step in enumerate(policy.escalation_policies.primary_oncall):
        for attempt in range(1, step.retry_count + 1):
            pages.append(Due(f"page/{i}/{attempt}", at))
            at += step.escalation_delay.total_seconds()
    return pages


def schedule(policy: Policy, severity: str = "sev1", team: str = "sre") -> list[Due]:
    """Every timed step of a sev1 the vendors see: pages, missed targets and exhaustion (told to the team's
    Slack channel), management steps."""
    chain = sum(s.escalation_delay.total_seconds() * s.retry_count for s in policy.escalation_policies.primary_oncall)
    level = policy.severity(severity)
    steps = [
        *page_schedule(policy),
        Due(f"breach/response/{team}", level.response_time.total_seconds()),
        Due(f"breach/mitigation/{team}", level.escalation_time.total_seconds()),
        Due(f"exhausted/{team}", chain),
    ]
    for i, step in enumerate(policy.escalation_policies.management_escalation):
        durations = [re.fullmatch(r"duration\s*>=?\s*'(.+)'", c.strip()) for c in step.conditions]
        [after] = [parse_duration(m.group(1)) for m in durations if m]
        steps.append(Due(f"management/{i}", after.total_seconds()))
    return sorted(steps, key=lambda d: d.offset)


@dataclass(frozen=True)
class Timing:
    step: str
    due: float  # epoch seconds
    arrived: float | None  # first arrival at the vendor, epoch seconds
    allowed: float  # the latest arrival that is on schedule

    @property
    def late(self) -> float:
        return (self.arrived - self.due) if self.arrived is not None else float("inf")


def resumed_at(ledger: Ledger, key: str, killed: float) -> float:
    """When incident `key` acted again after a kill: its first delivery after it that no vendor had seen before
    (the retry of the delivery the kill cut off is the old work finishing, not the incident moving on)."""
    mine = f"incident-{key}/"
    effects = [e for e in ledger.effects() if e.key.startswith(mine)]
    before = {e.key for e in effects if e.at <= killed}
    after = [e.at for e in effects if e.at > killed and e.key not in before]
    return min(after) if after else float("inf")


def timings(
    ledger: Ledger, key: str, steps: list[Due], opened: float, outage: tuple[float, float] | None = None
) -> list[Timing]:
    """When each step of incident `key` first reached its vendor, against when it was due.

    `outage` = (killed, resumed): nothing can go out in between. A step that fell due then is on schedule if it
    went out within ON_TIME of `resumed`, plus CATCH_UP for each overdue page before it (the incident sends
    overdue pages one per pass of its loop, a second apart, never as a burst). Every other step must arrive
    within ON_TIME of its due time, before the outage and after it alike."""
    result = []
    overdue = 0
    for due in sorted(steps, key=lambda d: d.offset):
        at = opened + due.offset
        allowed = at + ON_TIME
        if outage is not None and outage[0] - ON_TIME <= at <= outage[1]:
            allowed = outage[1] + ON_TIME + CATCH_UP * overdue
            overdue += due.step.startswith("page/")
        result.append(Timing(due.step, at, ledger.first_at(due.step, f"incident-{key}"), allowed))
    return result


def assert_on_schedule(found: list[Timing]) -> None:
    problems = [
        f"{t.step}: due {t.due:.1f}, "
        + (f"arrived {t.late:+.1f}s (allowed until {t.allowed - t.due:+.1f}s)" if t.arrived else "never arrived")
        for t in found
        if t.arrived is None or not (t.due - 0.5 <= t.arrived <= t.allowed)
    ]
    assert problems == [], "escalation off schedule:\n" + "\n".join(problems)


def assert_no_duplicate_effects(ledger: Ledger) -> None:
    """No delivery applied twice at its vendor, whatever was retried."""
    doubled = {f"{channel} {step_of(key)}": n for (channel, key), n in ledger.duplicated().items()}
    assert doubled == {}, f"external effects applied more than once: {doubled}"


def delivered_pages(ledger: Ledger, policy: Policy, key: str) -> list[str]:
    """The page steps of incident `key` that reached a vendor (its idempotency keys start `incident-<key>/`)."""
    wanted = {d.step for d in page_schedule(policy)}
    seen = {step_of(e.key) for e in ledger.effects() if e.key.startswith(f"incident-{key}/")}
    return sorted(wanted & seen)


def check_incident(
    ledger: Ledger, policy: Policy, key: str, opened: float, outage: tuple[float, float] | None = None
) -> list[Timing]:
    """0 lost pages and every timed step on schedule, for one sev1 whose chain has run to its end."""
    expected = sorted(d.step for d in page_schedule(policy))
    assert delivered_pages(ledger, policy, key) == expected, f"pages of {key} lost"
    found = timings(ledger, key, schedule(policy), opened, outage)
    assert_on_schedule(found)
    return found


def chain_done(ledger: Ledger, policy: Policy, key: str) -> bool:
    return all(ledger.first_at(d.step, f"incident-{key}") for d in schedule(policy))


@dataclass
class Figure:
    """One row of the suite's table (docs/testing.md, "Chaos")."""

    case: str
    kills: int
    pages_expected: int
    pages_delivered: int
    duplicated: int  # external effects applied twice (0 wherever the vendor takes an idempotency key)
    absorbed: int  # repeated requests the vendor's idempotency absorbed
    max_late: float  # worst lateness of a timed step against the policy (those due during the outage too)
    recovery: float  # from the kill to the killed part's next effect (paging, publishing, accepting), seconds

    @classmethod
    def of(
        cls,
        case: str,
        ledger: Ledger,
        found: list[Timing],
        *,
        kills: int,
        expected: int,
        delivered: int,
        recovery: float,
    ) -> Figure:
        """A row from what the vendors recorded and the timings a case checked."""
        return cls(
            case=case,
            kills=kills,
            pages_expected=expected,
            pages_delivered=delivered,
            duplicated=sum(ledger.duplicated().values()),
            absorbed=len(ledger.absorbed()),
            max_late=max(t.late for t in found),
            recovery=recovery,
        )

    @classmethod
    def one_kill(
        cls, case: str, ledger: Ledger, policy: Policy, key: str, opened: float, killed: float, resumed: float
    ) -> Figure:
        """The row of a case that killed one part once while one sev1 ran its chain: check_incident proves 0 lost
        pages and every step on schedule around the outage, so every page of the schedule was delivered."""
        found = check_incident(ledger, policy, key, opened, outage=(killed, resumed))
        pages = len(page_schedule(policy))
        return cls.of(case, ledger, found, kills=1, expected=pages, delivered=pages, recovery=resumed - killed)

    def row(self) -> str:
        return (
            f"| {self.case} | {self.kills} | {self.pages_expected} | {self.pages_delivered} | {self.duplicated} | "
            f"{self.absorbed} | {self.max_late:.1f} s | {self.recovery:.1f} s |"
        )


TABLE_HEAD = (
    "| case | kills | pages expected | pages delivered | duplicate effects | retries absorbed | worst lateness "
    "| recovery |\n|---|---|---|---|---|---|---|---|"
)
