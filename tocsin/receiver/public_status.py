"""The public status page, `GET /status` (HTML) and `/status.json`, for teams without Atlassian Statuspage.

Curated, never copied: the page shows only the components the policy lists (`status_page.components`, see
tocsin/policy/status_page.py) and titles worded from the policy ("Major outage on checkout"), never an alert's
summary or labels. An incident whose service is not listed does not appear at all, not even in the history.

Three layers, so that everything but the query is testable without Temporal:

- `IncidentSummary` / `summarize`: the only fields that may leave an incident for the page (not its title).
- `build_view`: pure; summaries, the public policy and "now" become the page (ordering, each listed component's
  worst status, the window).
- `fetch_incidents` and `StatusPage`: Temporal visibility (plus each incident's own times), cached for a few
  seconds so readers hammering a public page do not hammer visibility. Settings and the HTML template:
  tocsin/receiver/public_status_setup.py; the wiring to Temporal: tocsin/receiver/serve.py.

Words and impact follow the Statuspage channel (tocsin/channels/statuspage.py): triggered/acknowledged/mitigated
read investigating/identified/monitoring; sev1 is a major outage, sev2 a partial one, anything else degraded
performance; a mitigated incident leaves its component degraded (its impact stays what it was).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal, cast

from pydantic import BaseModel
from temporalio.client import Client, WorkflowExecution, WorkflowExecutionStatus

from tocsin import search_attributes as sa
from tocsin.channels.statuspage import INCIDENT_STATUS
from tocsin.incident.contracts import IncidentState
from tocsin.policy import status_page as public_words
from tocsin.policy.limits import STORM_SERVICE
from tocsin.policy.status_page import StatusPagePolicy
from tocsin.receiver.public_status_setup import LABELS, StatusPageConfig, html_renderer

log = logging.getLogger("tocsin.receiver")

OPEN = ("triggered", "acknowledged", "mitigated")
# Timeline kinds a reader sees as an update; deliveries, pages and notes are not (their times alone, no text).
PUBLIC_CHANGES = frozenset({"opened", "acknowledged", "mitigated", "resolved", "severity_changed"})
Condition = Literal["operational", "degraded_performance", "partial_outage", "major_outage"]
RANK: dict[str, int] = {"operational": 0, "degraded_performance": 1, "partial_outage": 2, "major_outage": 3}
MAX_OPEN, MAX_CLOSED, LOOKUPS = 200, 500, 10
DETAIL_BUDGET = 2.0  # seconds for all per-incident lookups together; the rest fall back to visibility alone
BUDGET = timedelta(seconds=DETAIL_BUDGET)
INCIDENTS = "WorkflowType = 'IncidentWorkflow' AND ExecutionStatus"


@dataclass(frozen=True)
class IncidentSummary:
    """Everything the page may know of an incident. The page is public and unauthenticated, while an incident's
    title, timeline, labels, annotations, people and runbooks name hosts, internal systems and colleagues (and
    alert text is whatever a sender posted): none of it is copied here, so none of it can be rendered by mistake.
    `service` decides whether the incident is shown at all, and is shown only when the policy lists it."""

    service: str
    severity: str
    status: str
    started_at: datetime
    updated_at: datetime
    resolved_at: datetime | None = None


def summarize(state: IncidentState) -> IncidentSummary:
    changes = [entry.at for entry in state.timeline if entry.kind in PUBLIC_CHANGES]
    stamps = [state.opened_at, state.acknowledged_at, state.mitigated_at, state.resolved_at, *changes]
    return IncidentSummary(
        service=state.service,
        severity=state.severity,
        status=state.status,
        started_at=state.opened_at,
        updated_at=max(t for t in stamps if t is not None),
        resolved_at=state.resolved_at if state.status == "resolved" else None,
    )


PublicStatus = Literal["investigating", "identified", "monitoring", "resolved"]


class PublicIncident(BaseModel):
    title: str
    component: str
    status: PublicStatus
    impact: Condition
    started_at: datetime
    updated_at: datetime
    resolved_at: datetime | None = None
    duration_seconds: int | None = None


class Component(BaseModel):
    name: str
    status: Condition


class StatusView(BaseModel):
    status: Condition
    headline: str
    generated_at: datetime
    history_days: int
    components: list[Component]
    incidents: list[PublicIncident]
    history: list[PublicIncident]


def impact(severity: str) -> Condition:
    return cast(Condition, public_words.impact(severity))  # sev1, sev2, the rest


def _condition(incident: IncidentSummary) -> Condition:
    return "degraded_performance" if incident.status == "mitigated" else impact(incident.severity)


def _public(incident: IncidentSummary, public: StatusPagePolicy) -> PublicIncident:
    took = incident.resolved_at - incident.started_at if incident.resolved_at else None
    return PublicIncident(
        title=public.title(incident.severity, incident.service),
        component=incident.service,
        status=cast(PublicStatus, INCIDENT_STATUS[incident.status]),
        impact=impact(incident.severity),
        started_at=incident.started_at,
        updated_at=incident.updated_at,
        resolved_at=incident.resolved_at,
        duration_seconds=max(int(took.total_seconds()), 0) if took is not None else None,
    )


def build_view(
    incidents: Iterable[IncidentSummary | IncidentState],
    *,
    now: datetime,
    history_days: int = 14,
    public: StatusPagePolicy | None = None,
) -> StatusView:
    """Current incidents worst impact first, then newest; history newest resolution first; the listed components
    in their order, each at its worst open impact. Only listed components: nothing listed, nothing shown."""
    public = public or StatusPagePolicy()
    summaries = [i if isinstance(i, IncidentSummary) else summarize(i) for i in incidents]
    # A storm incident is how Tocsin pages once for many: its members are shown under their own services.
    summaries = [s for s in summaries if s.service != STORM_SERVICE and public.lists(s.service)]
    since = now - timedelta(days=history_days)
    current = [s for s in summaries if s.status in OPEN]
    past = [s for s in summaries if s.status == "resolved" and s.resolved_at and s.resolved_at >= since]
    current.sort(key=lambda s: (-RANK[impact(s.severity)], -s.started_at.timestamp(), s.service))
    past.sort(key=lambda s: (-s.resolved_at.timestamp() if s.resolved_at else 0.0, s.service))
    worst: dict[str, Condition] = dict.fromkeys(public.components, "operational")
    for incident in current:
        if RANK[_condition(incident)] > RANK[worst[incident.service]]:
            worst[incident.service] = _condition(incident)
    overall: Condition = max(worst.values(), key=RANK.__getitem__, default="operational")
    # With nothing listed the page knows of nothing: it must not claim that all is well.
    calm = "All systems operational" if worst else "No components are listed on this page"
    return StatusView(
        status=overall,
        headline=calm if overall == "operational" else LABELS[overall],
        generated_at=now,
        history_days=history_days,
        components=[Component(name=name, status=status) for name, status in worst.items()],
        incidents=[_public(s, public) for s in current],
        history=[_public(s, public) for s in past],
    )


# --- Temporal ---------------------------------------------------------------------------------------------


def _from_visibility(wf: WorkflowExecution) -> IncidentSummary:
    """When the incident cannot tell its own times (no worker answers the query): what visibility knows."""
    attrs = wf.typed_search_attributes
    closed = wf.status == WorkflowExecutionStatus.COMPLETED
    started = wf.start_time
    return IncidentSummary(
        service=attrs.get(sa.SERVICE) or "unknown",
        severity=attrs.get(sa.SEVERITY) or "",
        status="resolved" if closed else attrs.get(sa.STATUS) or "triggered",
        started_at=started,
        updated_at=(wf.close_time if closed else None) or started,
        resolved_at=wf.close_time if closed else None,
    )


async def fetch_incidents(client: Client, since: datetime, known: dict[str, IncidentSummary]) -> list[IncidentSummary]:
    """Open incidents and those closed since `since`. Times come from each incident (its `status` query, or a
    closed run's result, which never changes and is remembered in `known` by run id): a continued-as-new run
    started later than its incident did."""
    # ContinuedAsNew runs are left out: their incident goes on in the Running run.
    closed_since = f"CloseTime >= '{since.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}'"
    running = [wf async for wf in client.list_workflows(f"{INCIDENTS} = 'Running'", limit=MAX_OPEN)]
    closed = [
        wf async for wf in client.list_workflows(f"{INCIDENTS} = 'Completed' AND {closed_since}", limit=MAX_CLOSED)
    ]
    gate = asyncio.Semaphore(LOOKUPS)

    async def lookup(wf: WorkflowExecution) -> IncidentSummary:
        async with gate:
            handle = client.get_workflow_handle(wf.id, run_id=wf.run_id, result_type=IncidentState)
            if wf.status == WorkflowExecutionStatus.RUNNING:
                state = await handle.query("status", result_type=IncidentState, rpc_timeout=BUDGET)
            else:
                state = await handle.result(follow_runs=False, rpc_timeout=BUDGET)
                known[wf.run_id] = summarize(state)
            return summarize(state)

    pending = {wf.run_id: asyncio.create_task(lookup(wf)) for wf in running + closed if wf.run_id not in known}
    try:
        if pending:
            await asyncio.wait(pending.values(), timeout=DETAIL_BUDGET)
    finally:
        for unfinished in pending.values():
            unfinished.cancel()  # over budget (a worker that does not answer): visibility alone for those
    summaries = []
    for wf in running + closed:
        task = pending.get(wf.run_id)
        if task is None:
            summaries.append(known[wf.run_id])
        elif task.done() and not task.cancelled() and task.exception() is None:
            summaries.append(task.result())
        else:
            summaries.append(_from_visibility(wf))
    for run_id in set(known) - {wf.run_id for wf in closed}:
        del known[run_id]  # out of the window: forget it
    return summaries


# --- the cache ---------------------------------------------------------------------------------------


class StatusUnavailable(Exception):
    """Temporal did not answer; the page says so (503) instead of guessing."""


Fetch = Callable[[datetime], Awaitable[list[IncidentSummary]]]


class StatusPage:
    """`view()` for /status.json, `html(view)` for /status. One fetch at a time; its result, or its failure,
    is served for `cache_seconds`."""

    def __init__(
        self,
        fetch: Fetch,
        config: StatusPageConfig | None = None,
        *,
        clock: Callable[[], float] = time.time,
        templates: Path | None = None,
        home: Path | None = None,
    ) -> None:
        self.config = config or StatusPageConfig()
        self._fetch = fetch
        self._clock = clock
        self._lock = asyncio.Lock()
        self._fetched_at: float | None = None
        self._result: list[IncidentSummary] | StatusUnavailable = []
        self._render = html_renderer(templates, home)

    async def view(self) -> StatusView:
        now = self._clock()
        async with self._lock:
            if self._fetched_at is None or not 0 <= now - self._fetched_at < self.config.cache_seconds:
                since = datetime.fromtimestamp(now, UTC) - timedelta(days=self.config.history_days)
                try:
                    async with asyncio.timeout(self.config.timeout):
                        self._result = await self._fetch(since)
                except Exception as err:  # unreachable, refused, timed out: all mean "cannot say right now"
                    log.warning("status page: Temporal unreachable: %s", str(err) or type(err).__name__)
                    self._result = StatusUnavailable("incident data is unavailable right now")
                self._fetched_at = now
            result = self._result
        if isinstance(result, StatusUnavailable):
            raise result
        when = datetime.fromtimestamp(now, UTC)
        return build_view(result, now=when, history_days=self.config.history_days, public=self.config.public)

    def html(self, view: StatusView) -> str:
        return self._render(view)
