"""Storm consolidation as pure functions: who pages on their own, who joins a storm, and what a storm says.

More than `threshold` new incidents within `window` is a storm (a zone went down; every service alerts at
once). The first `threshold` page as usual; from the next one on, each new incident is still opened and
recorded but holds its paging, and one storm incident pages once for all of them. A storm lasts while new
incidents keep arriving within `window` of each other. The guard workflow calls `admit`; the storm incident
calls the rest. No I/O, no clock: `now` is always given.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from tocsin.durations import format_duration, format_elapsed
from tocsin.storm.contracts import (
    MAX_LISTED_MEMBERS,
    ActiveStorm,
    AdmitAnswer,
    GuardAdmit,
    StormGuardState,
    StormMember,
    StormRecord,
)

STORM_ALERTNAME = "TocsinAlertStorm"
# Answers remembered for retried admissions (a retry comes within seconds); bounds the guard's carried state.
DECIDED_KEPT = 1000


def severity_rank(name: str) -> int:
    """sev1 is the most severe: severities are `sev1`..`sev9` (tocsin.policy.schema.SEVERITY_PATTERN)."""
    return int(name[3:]) if name[3:].isdigit() else 99


def most_severe(names: list[str]) -> str:
    return min(names, key=severity_rank)


def storm_key(started_at: datetime) -> str:
    # A storm lasts at least its window (10 s or more), so two cannot start within the same second.
    return f"storm-{started_at:%Y%m%d-%H%M%S}"


def admit(state: StormGuardState, request: GuardAdmit, now: datetime) -> AdmitAnswer:
    """Decide for one new incident, and remember it. Asking again for the same key answers the same."""
    key = request.member.key
    _forget_before(state, now - request.window)
    if key in state.decided:
        return state.decided[key]
    storm = state.storm
    if storm is not None and now - storm.last_at > request.window:
        state.storm = storm = None  # the burst ended: counting starts afresh
    severity = request.member.severity
    outranks = storm is not None and _more_severe(severity, storm.worst)
    if storm is not None and not request.manual and outranks and storm.alone.get(severity, 0) < request.threshold:
        # A storm of warnings must not swallow a sev1: it pages on its own and does not extend the storm.
        storm.alone[severity] = alone = storm.alone.get(severity, 0) + 1
        answer = AdmitAnswer(
            held=False,
            reason=f"{severity} is more severe than storm {storm.key} ({storm.worst}): pages on its own "
            f"({alone} of {request.threshold} before {severity} incidents join the storm too)",
        )
    elif storm is not None and not request.manual:
        storm.last_at = now
        storm.members += 1
        if outranks:
            storm.worst = severity
        answer = AdmitAnswer(
            held=True, storm_key=storm.key, reason=f"joins storm {storm.key} ({storm.members} incidents held so far)"
        )
    else:
        state.recent.append(request.member)
        within = len(state.recent)
        if request.manual or within <= request.threshold:
            answer = AdmitAnswer(
                held=False, reason=f"{within} new incidents within {format_duration(request.window)}; pages on its own"
            )
        else:
            started = storm_key(now)
            state.storm = ActiveStorm(key=started, started_at=now, last_at=now, members=1, worst=severity)
            earlier = [m.model_copy(update={"paged": True}) for m in state.recent[:-1]]
            state.recent = []
            answer = AdmitAnswer(
                held=True,
                storm_key=started,
                earlier=earlier,
                reason=f"{within} new incidents within {format_duration(request.window)} (more than "
                f"{request.threshold}): storm {started} pages for them",
            )
    state.decided[key] = answer.model_copy(update={"earlier": []})
    state.decided_at[key] = now
    while len(state.decided) > DECIDED_KEPT:
        oldest = next(iter(state.decided))
        del state.decided[oldest]
        state.decided_at.pop(oldest, None)
    return answer


def _more_severe(severity: str, worst: str | None) -> bool:
    return worst is not None and severity_rank(severity) < severity_rank(worst)


def _forget_before(state: StormGuardState, horizon: datetime) -> None:
    # Arrival at the guard is what counts: members' own clocks may lag behind a busy worker.
    state.recent = [m for m in state.recent if state.decided_at.get(m.key, m.opened_at) > horizon]
    old = [k for k, at in state.decided_at.items() if at <= horizon]
    for k in old:
        del state.decided_at[k]
        state.decided.pop(k, None)


def add_members(record: StormRecord, members: list[StormMember], now: datetime) -> list[StormMember]:
    """Add the members not listed yet; the new ones, in order. Beyond MAX_LISTED_MEMBERS they are counted."""
    listed = {m.key for m in record.members}
    added = []
    for member in members:
        if member.key in listed:
            continue
        listed.add(member.key)
        added.append(member)
        record.by_severity[member.severity] = record.by_severity.get(member.severity, 0) + 1
        if len(record.members) < MAX_LISTED_MEMBERS:
            record.members.append(member)
        else:
            record.folded += 1
    if added:
        record.first_at = record.first_at or now
        record.last_at = now
        record.summarized = False
    return added


def over_at(record: StormRecord) -> datetime | None:
    """When the burst counts as over: `window` after the last member joined; None once summarized."""
    if record.summarized or record.last_at is None:
        return None
    return record.last_at + record.window


def title(record: StormRecord) -> str:
    services = len({m.service for m in record.members})
    more = "+" if record.folded else ""
    return f"Alert storm: {record.count} new incidents across {services}{more} services"


def summary(record: StormRecord) -> str:
    """One paragraph for the timeline and the stakeholders when the burst is over."""
    paged = sum(1 for m in record.members if m.paged)
    severities = ", ".join(f"{s} {n}" for s, n in sorted(record.by_severity.items(), key=lambda i: severity_rank(i[0])))
    services = Counter(m.service for m in record.members).most_common(10)
    named = ", ".join(f"{s} ({n})" for s, n in services)
    rest = len({m.service for m in record.members}) - len(services)
    span = format_elapsed(record.last_at - record.first_at) if record.first_at and record.last_at else "0s"
    return (
        f"storm over: {record.count} new incidents over {span} ({paged} paged on their own before it began, "
        f"{record.count - paged} held); by severity: {severities}; services: {named}"
        + (f" and {rest} more" if rest > 0 else "")
        + (f"; {record.folded} not listed one by one" if record.folded else "")
    )
