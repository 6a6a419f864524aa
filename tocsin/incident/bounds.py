"""How an incident keeps its state bounded whatever senders post. Pure functions over IncidentState.

The state is what the `status` query returns and what continue-as-new carries, so it must stay well under
Temporal's payload limits (2 MiB; queries fail long before, at the gRPC message size). Three rules:

- alert records: one per fingerprint up to `limits.alerts_per_incident`; past it each notification is
  counted (`alerts_untracked`), never kept, and every notification is counted by status (`alert_events`);
- timeline: up to `limits.timeline_entries`; past it the oldest noise (alert changes, deliveries, syncs) is
  folded away first, so acknowledgements and notes survive a storm, and `timeline_folded` counts it;
- text: alert summaries and timeline text are cut short; the signals that carried them stay in the history.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from tocsin.incident.contracts import AlertEvent, AlertRecord, IncidentState, TimelineEntry

TIMELINE_TEXT_MAX = 1000
ALERT_SUMMARY_MAX = 200
# A payload's alert changes reach the timeline one by one up to this many; beyond, as one line per status.
ENTRIES_PER_BATCH = 3
# Kinds folded first when the timeline is full: what a storm produces in bulk, not what people did.
NOISE = frozenset({"alert_firing", "alert_resolved", "alerts", "delivered", "delivery_failed", "sync"})
# The first entries (opened, triaged) say what the incident is: never folded.
KEPT_HEAD = 2


def append_entry(state: IncidentState, entry: TimelineEntry, limit: int) -> None:
    if len(entry.text) > TIMELINE_TEXT_MAX:
        entry = entry.model_copy(update={"text": entry.text[: TIMELINE_TEXT_MAX - 1] + "…"})
    state.timeline.append(entry)
    while len(state.timeline) > limit:
        fold_oldest(state)


def fold_oldest(state: IncidentState) -> None:
    """Drop one entry: the oldest noise after the head, else the oldest after the head."""
    timeline = state.timeline
    index = next((i for i in range(KEPT_HEAD, len(timeline)) if timeline[i].kind in NOISE), KEPT_HEAD)
    if index < len(timeline):
        del timeline[index]
        state.timeline_folded += 1


def take_alerts(state: IncidentState, events: list[AlertEvent], now: datetime, cap: int) -> list[tuple[str, str]]:
    """Fold a payload's alerts into the state; the timeline lines it deserves, as (kind, text)."""
    changes: list[tuple[str, str]] = []
    untracked: Counter[str] = Counter()
    for event in events:
        state.alert_events[event.status] = state.alert_events.get(event.status, 0) + 1
        known = state.alerts.get(event.fingerprint)
        if known is None:
            if len(state.alerts) >= cap:
                untracked[event.status] += 1
                continue
            state.alerts[event.fingerprint] = AlertRecord(
                status=event.status, summary=event.summary[:ALERT_SUMMARY_MAX], first_seen=now, last_seen=now
            )
            changes.append((event.status, event.summary or event.fingerprint))
        else:
            known.count += 1
            known.last_seen = now
            if known.status != event.status:
                known.status = event.status
                changes.append((event.status, event.summary or event.fingerprint))
    lines = _change_lines(changes)
    if untracked:
        first = state.alerts_untracked == 0
        state.alerts_untracked += sum(untracked.values())
        counted = ", ".join(f"{n} {status}" for status, n in sorted(untracked.items()))
        text = f"{counted} beyond the {cap} alerts tracked one by one: counted, not kept"
        if first:
            text += "; this incident no longer resolves itself when its alerts clear: a person resolves it"
        lines.append(("alerts", text))
    return lines


def _change_lines(changes: list[tuple[str, str]]) -> list[tuple[str, str]]:
    if len(changes) <= ENTRIES_PER_BATCH:
        return [(f"alert_{status}", text) for status, text in changes]
    lines = []
    for status in ("firing", "resolved"):
        texts = [text for s, text in changes if s == status]
        if texts:
            lines.append((f"alert_{status}", f"{len(texts)} alerts {status}: {texts[0]} (and {len(texts) - 1} more)"))
    return lines


def all_quiet(state: IncidentState) -> bool:
    """Every alert resolved: the condition for auto-resolution. Untracked alerts cannot be known to be quiet."""
    return (
        bool(state.alerts)
        and state.alerts_untracked == 0
        and all(a.status == "resolved" for a in state.alerts.values())
    )


def carried_bytes(state: IncidentState) -> int:
    return len(state.model_dump_json())


def shrink(state: IncidentState, budget: int) -> None:
    """Before continue-as-new: fold the timeline until the carried state fits `budget` bytes."""
    while carried_bytes(state) > budget and len(state.timeline) > KEPT_HEAD:
        for _ in range(max((len(state.timeline) - KEPT_HEAD) // 4, 1)):
            fold_oldest(state)
