"""Maintenance windows' side effects: a new incident asks the registry which windows hold it, and the registry
tells the open incidents of a service when one of its windows starts or ends.

Both are read-mostly and safe to repeat: the lookup only queries, and an incident that hears of the same
window twice keeps one copy of it (tocsin.maintenance.windows.remember).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from tocsin.incident.client import list_incidents
from tocsin.incident.contracts import OPEN_STATUSES, incident_workflow_id
from tocsin.maintenance.client import current_windows
from tocsin.maintenance.contracts import LookupAnswer, LookupRequest, MaintenanceState, NotifyRequest, NotifyResult
from tocsin.maintenance.windows import live, matches

# Open incidents of one service told at once; more are left to wake on their own at the window's end.
MAX_TOLD = 1000
# How long the registry's answer serves new incidents' lookups.
CACHE_SECONDS = 1.0
# Signals in flight at once: a window over a busy service must not flood the frontend.
CONCURRENCY = 20


class MaintenanceActivities:
    def __init__(self, client: Client, fresh_for: float = CACHE_SECONDS) -> None:
        self.client = client
        self.fresh_for = fresh_for
        self._cached: tuple[float, MaintenanceState] | None = None
        self._asking = asyncio.Lock()

    async def _windows(self) -> MaintenanceState:
        """The registry's windows, asked at most once a second however many incidents open at once: a storm of
        500 new incidents is one query, not 500 on one workflow. A window younger than that is still found: the
        registry tells open incidents when it starts, and again a little later (workflows/maintenance.py)."""
        async with self._asking:
            now = time.monotonic()
            if self._cached is None or now - self._cached[0] > self.fresh_for:
                self._cached = (now, await current_windows(self.client))
            return self._cached[1]

    @activity.defn(name="maintenance_lookup")
    async def lookup(self, request: LookupRequest) -> LookupAnswer:
        state = await self._windows()
        now = datetime.now(UTC)
        found = [w for w in state.windows if live(w, now) and matches(w, request.service, request.labels)]
        return LookupAnswer(windows=found)

    @activity.defn(name="maintenance_notify")
    async def notify(self, request: NotifyRequest) -> NotifyResult:
        """Signal `maintenance` to every open incident of the window's service (each checks the labels)."""
        window = request.notice.window
        try:
            rows = await list_incidents(self.client, status=OPEN_STATUSES, service=window.service, limit=MAX_TOLD + 1)
        except RPCError as err:
            if err.status in (RPCStatusCode.UNIMPLEMENTED, RPCStatusCode.INVALID_ARGUMENT):
                raise ApplicationError(f"visibility cannot answer: {err.message}", non_retryable=True) from err
            raise
        gate = asyncio.Semaphore(CONCURRENCY)

        async def tell(workflow_id: str) -> bool:
            async with gate:
                try:
                    await self.client.get_workflow_handle(workflow_id).signal("maintenance", request.notice)
                except RPCError as err:
                    if err.status == RPCStatusCode.NOT_FOUND:
                        return False  # closed since the list: nothing to hold
                    raise
                return True

        told = await asyncio.gather(*(tell(incident_workflow_id(row.key)) for row in rows[:MAX_TOLD]))
        return NotifyResult(told=sum(told), skipped=max(len(rows) - MAX_TOLD, 0))
