"""Action items from how the response went, beside those from the cause: each computed from the incident's own
record (timeline times, channels, who did what) and cited to it. Pure.

- **Customer communication.** The status page was updated by hand (a responder's words say they updated,
  posted or set the status page / status site / health dashboard), or its first update, automatic or not,
  came more than `COMMS_LAG` after the first alert, or an automatic update failed → "Automate status page
  updates from the incident" (P2). An automatic update that failed (a `delivery_failed` entry on the
  statuspage channel) also → "Keep the status page independent of the systems it reports on" (P1): the page
  failed when it was needed. An incident whose record shows no status page at all earns neither: nothing
  says the service has one.
- **Manual, slow mitigation.** Mitigated more than `SLOW_MITIGATION` after the first alert, and no runbook ran
  before it (no `runbook` entry) → "Turn the manual mitigation into a tested runbook" (P2), quoting the
  mitigation's words.
- **The responders' own tools down.** A log line or a responder's words in the incident window say a
  management surface (dashboard, console, admin, control panel, login) failed → "Keep the <surface> reachable
  independently of <service>" (P1): customers and responders need it most while the service is down. Words
  about the status page itself are the communication items' evidence, not this.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from tocsin.postmortem.contracts import Evidence, Priority
from tocsin.postmortem.timeline import as_utc

COMMS_LAG = timedelta(minutes=10)
SLOW_MITIGATION = timedelta(minutes=30)

_STATUS_CHANNEL = re.compile(
    r"^(?:delivered|delivery_failed|sync|action): (?:start_status_page_incident: )?statuspage\b"
)
_STATUS_PAGE = re.compile(
    r"\bstatus[ -]?page\b|\bstatuspage\b|\bstatus (?:site|dashboard)\b|\bhealth dashboard\b", re.I
)
_UPDATED = re.compile(r"\b(updat\w*|post\w*|set|placed|put|changed|switched|announc\w*|tweet\w*|banner)\b", re.I)
_SURFACE = re.compile(r"\b(dashboard|console|admin|control panel|login)\b", re.I)
_BROKEN = re.compile(r"(?<!\w)(failed|failing|unreachable|unavailable|down|refused|timed out|5\d\d)(?!\w)", re.I)


@dataclass(frozen=True)
class ResponseItem:
    title: str
    description: str
    priority: Priority
    evidence: list[str]


def _dated(evidence: Sequence[Evidence]) -> list[Evidence]:
    return sorted((e for e in evidence if e.at is not None), key=lambda e: (as_utc(e.at or datetime.min), e.id))


def first_alert(evidence: Sequence[Evidence]) -> Evidence | None:
    """The incident's first alert, else its opening: where the response's clock starts."""
    own = [e for e in _dated(evidence) if e.source == "incident"]
    return next((e for e in own if e.kind == "first_alert"), None) or next((e for e in own if e.kind == "opened"), None)


def _minutes(delta: timedelta) -> int:
    return round(delta.total_seconds() / 60)


def _span(delta: timedelta) -> str:
    """'22 min', or '3 h 40 min' past two hours."""
    minutes = _minutes(delta)
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h {minutes % 60} min"


def _since(start: Evidence, later: Evidence) -> timedelta:
    assert start.at is not None and later.at is not None
    return as_utc(later.at) - as_utc(start.at)


def communication(evidence: Sequence[Evidence]) -> list[ResponseItem]:
    dated = _dated(evidence)
    start = first_alert(evidence)
    automatic = [e for e in dated if e.source == "incident" and _STATUS_CHANNEL.match(e.summary)]
    failed = [e for e in automatic if e.kind == "delivery_failed" or e.summary.endswith("(failed)")]
    posted = [e for e in automatic if e not in failed]
    by_hand = [e for e in dated if e.said is not None and _STATUS_PAGE.search(e.summary) and _UPDATED.search(e.summary)]
    first = min(posted + by_hand, key=lambda e: (as_utc(e.at or datetime.max), e.id), default=None)
    late = first is not None and start is not None and _since(start, first) > COMMS_LAG
    if not (by_hand or failed or late):
        return []
    reasons = []
    if by_hand:
        reasons.append(f"it was updated by hand ({', '.join(e.by for e in by_hand if e.by) or 'a responder'})")
    if late and first is not None and start is not None:
        reasons.append(f"its first update came {_span(_since(start, first))} after the first alert")
    if failed:
        reasons.append("an automatic update failed")
    cited = [e.id for e in [*([start] if late and start else []), *by_hand, *failed, *([first] if late else [])] if e]
    items = [
        ResponseItem(
            "Automate status page updates from the incident",
            f"This time {'; '.join(reasons)}. Post the first public update from the incident itself within "
            f"{_minutes(COMMS_LAG)} min of the first alert (the policy's start_status_page_incident action) and "
            "let it follow the incident, so nobody updates the status page by hand mid-incident.",
            "P2",
            list(dict.fromkeys(cited)),
        )
    ]
    if failed:
        items.append(
            ResponseItem(
                "Keep the status page independent of the systems it reports on",
                f"It failed when it was needed ({failed[0].summary}). Host and administer it on infrastructure, "
                "in a region or with a provider, the incident cannot take down, with a tested fallback channel.",
                "P1",
                [e.id for e in failed],
            )
        )
    return items


def manual_mitigation(evidence: Sequence[Evidence]) -> list[ResponseItem]:
    start = first_alert(evidence)
    mitigated = next((e for e in _dated(evidence) if e.source == "incident" and e.kind == "mitigated"), None)
    if start is None or mitigated is None or _since(start, mitigated) <= SLOW_MITIGATION:
        return []
    runbooks = [e for e in _dated(evidence) if e.kind == "runbook" and _since(mitigated, e) <= timedelta(0)]
    if runbooks:
        return []
    words = mitigated.summary.split(": ", 1)[1] if mitigated.said and ": " in mitigated.summary else ""
    what = f" ({words})" if words else ""
    return [
        ResponseItem(
            "Turn the manual mitigation into a tested runbook",
            f"Mitigating took {_span(_since(start, mitigated))} from the first alert{what}, and no runbook ran "
            "before it. Write the steps down as a runbook responders are offered for this alert, and rehearse it.",
            "P2",
            [start.id, mitigated.id],
        )
    ]


def tools_down(evidence: Sequence[Evidence], service: str | None) -> list[ResponseItem]:
    found = [
        e
        for e in _dated(evidence)
        if (e.source == "logs" or e.said is not None)
        and _SURFACE.search(e.summary)
        and _BROKEN.search(e.summary)
        # A status page (a "health dashboard") down is the communication items' case, not this one.
        and not _STATUS_PAGE.search(e.summary)
    ]
    if not found:
        return []
    surface = next(m for e in found for m in [_SURFACE.search(e.summary)] if m)[1].lower()
    if service and surface in service.lower():  # the dashboard is the service that failed: its own items say it
        return []
    of = service or "the failing service"
    return [
        ResponseItem(
            f"Keep the {surface} reachable independently of {of}",
            f"The {surface} failed with {of} ({found[0].id}), when customers and responders needed it most. Give "
            "it a path that does not depend on the failing service (an emergency bypass), and rehearse using it.",
            "P1",
            [e.id for e in found[:3]],
        )
    ]


def response_items(evidence: Sequence[Evidence], service: str | None = None) -> list[ResponseItem]:
    return [*communication(evidence), *manual_mitigation(evidence), *tools_down(evidence, service)]
