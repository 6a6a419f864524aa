"""Group commit per incident key: concurrent payloads for one incident share one Temporal call.

Under a storm, Alertmanager sends many payloads at once, each touching the same hundred incidents. One
signal(-with-start) per payload per key costs the receiver, the server and the incident's workflow one call,
one history event and one workflow task each, and a single workflow absorbs only a few signals a second.
Here at most one alerts call per key is in flight; payloads that arrive meanwhile wait and ride the next
call together. Nothing is acknowledged early: each payload's caller is answered only when the call that
carried its alerts has been durably accepted (or is told the same failure, and its sender retries; alerts
fold by fingerprint, so a retry is harmless). Order per key is arrival order.

Calls for one key also start at least INTERVAL apart: a workflow takes only a few signals a second, and
under a storm each signal is a workflow task and a write on the server, on the same path a new sev1's first
task must take (measured mid-storm: 2,000 alerts/s over 100 keys delayed new incidents' first tasks by 0.6
s at the median, 4 s at p99). A key's first call never waits, so an incident opens at once; only
more alerts for an incident already reached wait, at most INTERVAL.

A call carries at most MAX_EVENTS alerts (AlertBatch's own bound) and about MAX_BYTES of them, well under
Temporal's payload limits, so two payloads that are each accepted alone are never refused together.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from tocsin.models import AlertBatch, AlertEvent, IncidentInput

log = logging.getLogger("tocsin.intake")

MAX_EVENTS = 1000
# Two calls a second per incident at most (Temporal's guidance: about five signals a second into one workflow).
INTERVAL = 0.5
# Keys whose last call time is remembered; an older key's next call simply does not wait.
REMEMBERED = 10_000
# Temporal warns at 256 KiB and refuses at 2 MiB per payload; one payload's own batch may already be big.
MAX_BYTES = 256 * 1024

# One key's call: open or signal (start given) or signal only (None: never opens); True if it reached one.
Send = Callable[[str, IncidentInput | None, AlertBatch], Awaitable[bool]]


def weight(event: AlertEvent) -> int:
    """About the bytes an alert adds to a signal: cheap, no serialisation."""
    return 120 + len(event.fingerprint) + len(event.summary) + sum(len(k) + len(v) + 6 for k, v in event.labels.items())


@dataclass
class _Waiting:
    start: IncidentInput | None
    events: list[AlertEvent]
    bytes: int
    answer: asyncio.Future[bool] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class SignalCoalescer:
    """`await send(key, start, batch)` returns what the call that carried `batch` returned, or raises what it
    raised. One instance per process and client (the receiver's, the detector's)."""

    def __init__(
        self,
        send: Send,
        max_events: int = MAX_EVENTS,
        max_bytes: int = MAX_BYTES,
        interval: float = INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._send = send
        self._max_events = max_events
        self._max_bytes = max_bytes
        self._interval = interval
        self._clock = clock
        self._sleep = sleep
        self._last: OrderedDict[str, float] = OrderedDict()  # key -> when its last call started
        self._queues: dict[str, list[_Waiting]] = {}
        # Draining tasks are owned here, not by any request: a sender that gives up (client gone) must not
        # cancel the call other payloads are riding on.
        self._draining: dict[str, asyncio.Task[None]] = {}
        self.calls = 0  # Temporal calls made; payload batches submitted are counted by the caller

    async def send(self, key: str, start: IncidentInput | None, batch: AlertBatch) -> bool:
        events = list(batch.events)
        waiting = _Waiting(start, events, sum(weight(e) for e in events))
        self._queues.setdefault(key, []).append(waiting)
        if key not in self._draining:
            self._draining[key] = asyncio.create_task(self._drain(key), name=f"coalesce:{key}")
        return await asyncio.shield(waiting.answer)

    def _take(self, queue: list[_Waiting]) -> list[_Waiting]:
        """The oldest waiting payloads that fit in one call; always at least one (each is valid alone)."""
        taken = [queue.pop(0)]
        events, size = len(taken[0].events), taken[0].bytes
        while queue and events + len(queue[0].events) <= self._max_events and size + queue[0].bytes <= self._max_bytes:
            events += len(queue[0].events)
            size += queue[0].bytes
            taken.append(queue.pop(0))
        return taken

    async def _pause(self, key: str) -> None:
        """Wait out what is left of INTERVAL since this key's last call, then mark this call's start. Payloads
        arriving meanwhile join the queue, so they ride this call."""
        last = self._last.get(key)
        if last is not None:
            left = last + self._interval - self._clock()
            if left > 0:
                await self._sleep(left)
        self._last[key] = self._clock()
        self._last.move_to_end(key)
        while len(self._last) > REMEMBERED:
            self._last.popitem(last=False)

    async def _drain(self, key: str) -> None:
        queue = self._queues[key]
        taken: list[_Waiting] = []
        try:
            while queue:
                await self._pause(key)
                taken = self._take(queue)
                # Any firing payload may open the incident; the first one's plan is the incident's, as if
                # it had arrived alone first. Resolutions riding along never open one by themselves.
                start = next((w.start for w in taken if w.start is not None), None)
                batch = AlertBatch(events=[e for w in taken for e in w.events])
                self.calls += 1
                try:
                    reached = await self._send(key, start, batch)
                except Exception as err:  # each caller classifies Temporal's answer itself
                    for w in taken:
                        _settle(w, error=err)
                    continue
                for w in taken:
                    _settle(w, result=reached)
        finally:
            del self._draining[key]
            del self._queues[key]
            # Only on cancellation (shutdown) is anything unsettled: those callers are told, not left hanging.
            for w in [*taken, *queue]:
                if not w.answer.done():
                    w.answer.cancel()


def _settle(w: _Waiting, *, result: bool = False, error: Exception | None = None) -> None:
    if w.answer.done():
        return
    if error is not None:
        w.answer.set_exception(error)
    else:
        w.answer.set_result(result)
