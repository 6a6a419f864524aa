"""The post-mortem's timeline: every dated piece of evidence from every source, merged, ordered, de-duplicated.

Pure and deterministic (it runs inside the PostMortemWorkflow). Each event keeps the evidence id it came
from, so the report's timeline and the analysis' claims point at the same facts.

Two pieces of evidence are one event when they say the same thing (case, spacing and trailing punctuation
aside) within `DUPLICATE_WINDOW` of each other: a source that reported a line twice, or two sources that
reported the same fact (the incident's own record and PagerDuty both saying "Acknowledged by alice"). The
earliest is kept; at the same instant, the source earlier in `SOURCE_ORDER`. Evidence without a time is not
on the timeline (the report lists it with its source). At the same instant the incident's opening comes first:
an update that lands in the workflow's first task is recorded in the same instant, and happened after it.

`story` is the timeline a reader follows: the key moments (first alert, opening, pages, acknowledgement,
escalations, notes, actions and runbook steps, mitigation, resolution, alert recovery) in order, each burst of
deliveries and syncs folded into one line ("5 notifications delivered: PagerDuty" then TIMES and 4, then
", Statuspage"). The report keeps the merged timeline whole beside it.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tocsin.postmortem.contracts import Evidence, SourceName, SourceResult, TimelineEvent

DUPLICATE_WINDOW = timedelta(seconds=5)
# The incident's own record first: what people did is the backbone; then what systems saw.
SOURCE_ORDER: tuple[SourceName, ...] = ("incident", "pagerduty", "changes", "metrics", "logs")

_SPACES = re.compile(r"\s+")


def as_utc(at: datetime) -> datetime:
    """A comparable instant: naive datetimes are taken as UTC (every source reports UTC)."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def normalized(text: str) -> str:
    """The text as compared for duplicates: lower case, single spaces, no trailing punctuation."""
    return _SPACES.sub(" ", text).strip().rstrip(".!;:,").strip().casefold()


def _rank(source: SourceName) -> int:
    return SOURCE_ORDER.index(source) if source in SOURCE_ORDER else len(SOURCE_ORDER)


def merge_timeline(sources: list[SourceResult]) -> list[TimelineEvent]:
    """One list sorted by time (then source, then evidence id), duplicates removed, undated evidence left out."""
    dated: list[tuple[datetime, int, int, str, Evidence]] = []
    for result in sources:
        for item in result.evidence:
            if item.at is not None:
                first = 0 if item.kind == "opened" else 1
                dated.append((as_utc(item.at), first, _rank(item.source), item.id, item))
    dated.sort(key=lambda entry: entry[:4])

    events: list[TimelineEvent] = []
    seen_ids: set[str] = set()
    # The last time each normalized text was kept: a later copy within the window is the same fact.
    kept_at: dict[str, datetime] = {}
    for at, _, _, evidence_id, item in dated:
        if evidence_id in seen_ids:
            continue
        text = normalized(item.summary)
        previous = kept_at.get(text)
        if previous is not None and at - previous <= DUPLICATE_WINDOW:
            continue
        seen_ids.add(evidence_id)
        kept_at[text] = at
        events.append(
            TimelineEvent(id=evidence_id, at=item.at or at, source=item.source, text=item.summary, kind=item.kind)
        )
    return events


# The incident record's chatter: folded into one line per burst in the story.
FOLDED = {"delivered": ("notification delivered", "notifications delivered"), "sync": ("sync", "syncs")}
TIMES = "\u00d7"  # the multiplication sign, escaped here because ruff flags it as confusable
BURST_GAP = timedelta(minutes=2)  # a delivery this long after the previous one starts a new burst
CHANNEL_NAMES = {
    "pagerduty": "PagerDuty",
    "statuspage": "Statuspage",
    "slack": "Slack",
    "sms": "SMS",
    "email": "Email",
    "github": "GitHub",
    "opsgenie": "Opsgenie",
    "teams": "Teams",
    "webhook": "Webhook",
    "phone": "Phone",
    "voice": "Phone",
}


@dataclass(frozen=True)
class StoryEvent:
    at: datetime
    source: SourceName
    text: str
    evidence: tuple[str, ...]  # one id, or every id a folded line stands for


def _channel(event: TimelineEvent) -> str:
    """'delivered: pagerduty → PDAVE04: ...' and 'sync: statuspage page-1: ...' → 'PagerDuty', 'Statuspage'."""
    words = event.text.removeprefix(f"{event.kind}: ").split()
    name = words[0].rstrip(":") if words else "?"
    return CHANNEL_NAMES.get(name.casefold(), name)


def _fold(burst: list[TimelineEvent]) -> StoryEvent:
    parts = []
    for kind, (one, many) in FOLDED.items():
        of_kind = [e for e in burst if e.kind == kind]
        if of_kind:
            counts = Counter(_channel(e) for e in of_kind)
            channels = ", ".join(name if n == 1 else f"{name} {TIMES}{n}" for name, n in counts.items())
            parts.append(f"{len(of_kind)} {one if len(of_kind) == 1 else many}: {channels}")
    return StoryEvent(burst[0].at, burst[0].source, "; ".join(parts), tuple(e.id for e in burst))


def _first_alert(event: TimelineEvent) -> str:
    return "first alert: " + event.text.removeprefix("alert_firing: ")


def story(events: list[TimelineEvent]) -> list[StoryEvent]:
    """The key moments in order, each burst of deliveries and syncs one line."""
    lines: list[StoryEvent] = []
    burst: list[TimelineEvent] = []
    alerted = False
    for event in events:
        if event.source == "incident" and event.kind in FOLDED:
            if burst and as_utc(event.at) - as_utc(burst[-1].at) > BURST_GAP:
                lines.append(_fold(burst))
                burst = []
            burst.append(event)
            continue
        if burst:
            lines.append(_fold(burst))
            burst = []
        text = event.text
        if event.kind == "first_alert":
            alerted = True  # the record's own first alert: the alerts that follow are not the first
        elif event.kind == "alert_firing" and not alerted:
            alerted, text = True, _first_alert(event)
        lines.append(StoryEvent(event.at, event.source, text, (event.id,)))
    if burst:
        lines.append(_fold(burst))
    return lines
