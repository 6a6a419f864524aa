"""An InboundAction, done: find the incident it names (its key, its page's short code, or the person's latest
page) and run the matching update as the person the vendor vouched for, `via` that vendor.

The update id is `<vendor>:<the vendor's event id>`, so a callback the vendor delivers twice (a retried
webhook, a double-tapped button) is one update in the incident's history, answered once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from pydantic import BaseModel
from temporalio.client import Client

from tocsin.incident.client import IncidentError, get_incident, list_incidents, send_update
from tocsin.incident.contracts import OPEN_STATUSES
from tocsin.incident.updates import AcknowledgeRequest, EscalateRequest, ResolveRequest, SnoozeRequest, TakeRequest
from tocsin.intake.contracts import TemporalUnavailable
from tocsin.intake.ingest import classify
from tocsin.responders.codes import short_code
from tocsin.responders.contracts import ActOutcome, InboundAction, NotActed

# Open incidents looked at to find "my latest page" or a short code: the newest ones first, BATCH at a time.
CANDIDATES = 50
BATCH = 10

Act = Callable[[InboundAction], Awaitable[ActOutcome]]


def update_of(action: InboundAction) -> tuple[str, BaseModel]:
    """The update's name and request, with `by` the vouched-for person and the vendor's event as its id."""
    common = {"by": action.person, "via": action.vendor, "request_id": f"{action.vendor}:{action.event_id}"}
    if action.verb == "acknowledge":
        return "acknowledge", AcknowledgeRequest(**common)
    if action.verb == "escalate":
        return "escalate", EscalateRequest(**common)
    if action.verb == "resolve":
        return "resolve", ResolveRequest(**common)
    if action.verb == "take":
        return "take", TakeRequest(**common)
    if action.snooze_for is None:
        raise NotActed("say for how long to snooze, e.g. 30m", "refused")
    return "snooze", SnoozeRequest(**common, duration=action.snooze_for)


async def find_incident(client: Client, person: str, code: str | None) -> str:
    """The key of the open incident an action means: the one with this short code (preferring one that paged
    the person), or without a code the newest open incident that paged the person.

    One visibility query for the open incidents, then their `status` queries a batch at a time, newest first:
    Slack gives the whole answer three seconds, and fifty queries one after another could take them all."""
    rows = await list_incidents(client, status=OPEN_STATUSES, limit=CANDIDATES)
    rows.sort(key=lambda r: r.opened_at.timestamp() if r.opened_at else 0.0, reverse=True)
    if code is not None:
        rows = [r for r in rows if short_code(r.key) == code]
        if not rows:
            raise NotActed(f"no open incident has the code {code}", "no_incident")
    for start in range(0, len(rows), BATCH):
        batch = rows[start : start + BATCH]
        states = await asyncio.gather(*(get_incident(client, row.key) for row in batch))
        for row, state in zip(batch, states, strict=True):
            if person in state.paged_people:
                return row.key
    if code is not None:
        return rows[0].key
    raise NotActed("no open incident has paged you; name it by its code or key", "no_incident")


async def act(client: Client, action: InboundAction) -> ActOutcome:
    """Run the action. Raises NotActed when the incident or the person's words say no (an answer for the
    person), and TemporalUnavailable when Temporal did not answer: the one failure every route turns into a
    503 with Retry-After, decided here once, so the vendor (or the person) simply tries again."""
    try:
        name, request = update_of(action)
        key = action.key or await find_incident(client, action.person, action.code)
        try:
            result = await send_update(client, key, name, request)
        except IncidentError as err:
            raise NotActed(str(err), "refused") from None
    except NotActed:
        raise
    except Exception as err:
        if classify(err) == "unavailable":
            raise TemporalUnavailable(f"Temporal did not answer: {str(err) or type(err).__name__}") from err
        raise
    return ActOutcome(key=result.key, status=result.status, message=result.message)


def temporal_act(client: Client) -> Act:
    """`act` bound to a client, as the receiver's routes take it (tests pass a fake)."""

    async def bound(action: InboundAction) -> ActOutcome:
        return await act(client, action)

    return bound
