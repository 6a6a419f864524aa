"""Group commit per incident key: concurrent payloads for one incident share one Temporal call.

Under a storm, Alertmanager sends many payloads at once, each touching the same hundred incidents. One
signal(-with-start) per payload per key costs the receiver, the server and the incident's workflow one call,
one history event and one workflow task each, and a single workflow absorbs only a few signals a second.
Here at most one alerts call per key is in flight; payloads that arrive meanwhile wait and ride the next
call together. Nothing is acknowledged early: each payload's caller is answered only when the call that
carried its alerts has been durably accepted (or is told the same failure, and its sender retries; alerts
fold by fingerprint, so a retry is harmless). Order per key is arrival order.

A busy server also sets the pace: after a call, the key's next one waits PACE times as long as that call
took (at most INTERVAL). Under light load a call takes milliseconds and nothing waits noticeably; under a
storm calls slow down, and each key's calls space out to at most about two a second, so the server is not
flooded with signals, each a workflow task and a write on the same path a new sev1's first task must take.
Measured mid-storm (make bench, 20 sev1 probes while 7 senders post 100-alert payloads): with no pause, new
incidents' first pages took 2.0 s at the median and 6.4 s at p99; pausing as long as the call took, 0.73 s
and 1.16 s; three times as long, 0.36 s and 0.96 s. A fixed 0.5 s pause did as well mid-storm but halved
throughput at one alert per POST (wrk: 658 -> 238 alerts/s; with PACE 3, 437). A key's first call never
waits, so an incident opens at once.

A call carries at most MAX_EVENTS alerts (AlertBatch's own bound) and about MAX_BYTES of them, well under
Temporal's payload limits, so two payloads that are each accepted alone are never refused together.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from tocsin.incident.contracts import AlertBatch, AlertEvent, IncidentInput

MAX_EVENTS = 1000
# The longest pause between two calls for one incident (Temporal's guidance: a workflow takes about five
# signals a second; a storm's keys get about two).
INTERVAL = 0.5
PACE = 3
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
        # key -> when its last call ended, and how long it took
        self._last: OrderedDict[str, tuple[float, float]] = OrderedDict()
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
        """Wait PACE times as long as this key's last call took (at most INTERVAL), from when it ended. Payloads
        arriving meanwhile join the queue, so they ride the next call."""
        last = self._last.get(key)
        if last is not None:
            ended, took = last
            left = ended + min(took * PACE, self._interval) - self._clock()
            if left > 0:
                await self._sleep(left)

    def _took(self, key: str, started: float) -> None:
        now = self._clock()
        self._last[key] = (now, now - started)
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
                started = self._clock()
                try:
                    reached = await self._send(key, start, batch)
                except Exception as err:  # each caller classifies Temporal's answer itself
                    for w in taken:
                        _settle(w, error=err)
                    continue
                finally:
                    self._took(key, started)
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
