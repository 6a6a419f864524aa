"""One incident key's alerts call, made as cheaply as its outcome allows.

Signal-with-start carries the incident's whole start input (its policy snapshot is about 13 KB) on every
call, though the start only matters when no incident is open; building and sending it was the receiver's
largest cost under load (a profile of the receiver at its limit: 13% serialising the start input, 31% in
the call itself). A long-lived sender remembers the keys it recently reached: for those it sends a plain
signal, and only if that incident has since closed (NOT_FOUND) does it fall back to signal-with-start. The
outcome is the same either way: a signal-with-start to a running incident is just a signal.
"""

from __future__ import annotations

from collections import OrderedDict

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from tocsin.incident.client import open_or_signal
from tocsin.incident.contracts import AlertBatch, IncidentInput, incident_workflow_id

# A missing incident is not an outage: a resolved alert for an incident that never opened is simply done.
NOT_THERE = (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION)
# Keys remembered as open; beyond this the oldest are forgotten (and cost one signal-with-start again).
REMEMBERED = 10_000


class AlertsSender:
    """`await sender(key, start, batch)`: True if an incident was opened or reached. With `start`, the alerts
    may open the incident; without (only resolutions), they may close an open one but never open one."""

    def __init__(self, client: Client, remembered: int = REMEMBERED) -> None:
        self.client = client
        self._open: OrderedDict[str, None] = OrderedDict()
        self._remembered = remembered
        self.starts = 0  # signal-with-starts made
        self.signals = 0  # plain signals made

    async def __call__(self, key: str, start: IncidentInput | None, batch: AlertBatch) -> bool:
        if start is None or key in self._open:
            if await self._signal(key, batch):
                return True
            if start is None:
                return False
        # Not known to be open, or it closed since: this call may have to open it.
        self.starts += 1
        await open_or_signal(self.client, start, batch)
        self._remember(key)
        return True

    async def _signal(self, key: str, batch: AlertBatch) -> bool:
        self.signals += 1
        try:
            await self.client.get_workflow_handle(incident_workflow_id(key)).signal("alerts", batch)
        except RPCError as err:
            if err.status not in NOT_THERE:
                raise
            self._open.pop(key, None)
            return False
        self._remember(key)
        return True

    def _remember(self, key: str) -> None:
        self._open[key] = None
        self._open.move_to_end(key)
        while len(self._open) > self._remembered:
            self._open.popitem(last=False)
