"""The post-mortem's timeline: every dated piece of evidence from every source, merged, ordered, de-duplicated.

Pure and deterministic (it runs inside the PostMortemWorkflow). Each event keeps the evidence id it came
from, so the report's timeline and the analysis' claims point at the same facts.

Two pieces of evidence are one event when they say the same thing (case, spacing and trailing punctuation
aside) within `DUPLICATE_WINDOW` of each other: a source that reported a line twice, or two sources that
reported the same fact (the incident's own record and PagerDuty both saying "Acknowledged by alice"). The
earliest is kept; at the same instant, the source earlier in `SOURCE_ORDER`. Evidence without a time is not
on the timeline (the report lists it with its source).
"""

from __future__ import annotations

import re
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
    dated: list[tuple[datetime, int, str, Evidence]] = []
    for result in sources:
        for item in result.evidence:
            if item.at is not None:
                dated.append((as_utc(item.at), _rank(item.source), item.id, item))
    dated.sort(key=lambda entry: entry[:3])

    events: list[TimelineEvent] = []
    seen_ids: set[str] = set()
    # The last time each normalized text was kept: a later copy within the window is the same fact.
    kept_at: dict[str, datetime] = {}
    for at, _, evidence_id, item in dated:
        if evidence_id in seen_ids:
            continue
        text = normalized(item.summary)
        previous = kept_at.get(text)
        if previous is not None and at - previous <= DUPLICATE_WINDOW:
            continue
        seen_ids.add(evidence_id)
        kept_at[text] = at
        events.append(TimelineEvent(id=evidence_id, at=item.at or at, source=item.source, text=item.summary))
    return events
