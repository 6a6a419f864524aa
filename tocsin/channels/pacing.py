"""Pacing: at most one send per (channel, pacing key) per the vendor's interval, so a burst of incidents
cannot get Tocsin rate-limited or banned by a vendor.

Each adapter says its vendor's limit where it is implemented: a class attribute `min_interval` (seconds
between two sends under one key), and optionally a method `pace_key(message)` naming what the vendor counts
against (Slack: the channel posted to). Without `pace_key` the whole adapter is one key: its one sending
number, routing key, webhook URL or SMTP relay. An adapter without `min_interval` (a test double, the
outbox) is not paced.

Slots go to the most urgent waiter, not the first to arrive. A sev1 sends about five messages through the
PagerDuty channel (its page and the emergency-response notices) and the vendor takes one per 0.5 s per
routing key, so in arrival order a new incident's page waited behind every earlier incident's notices
(measured: a burst of 30 sev1s 0.3 s apart, a page up to 29 s after its alert). The project's rule is that a
page never waits behind noise, so when several sends wait for one key the next free slot goes to a page
before anything else, then to the lowest Temporal priority key (1 first, as the task queues order work),
then to whoever came first. The vendor's budget is the same: one grant per `interval` per key.

A send goes at once when its key is free and nobody waits for it; otherwise it queues and the key's
dispatcher (one task per busy key, gone when its queue is empty) hands each slot out as it comes due. A
wait is capped (`max_wait`) so that a delivery still fits in its activity's start-to-close timeout: past
the cap it is sent anyway, outside the queue, and the vendor's 429 with Retry-After (handled in the delivery
activity) takes over. Such an overflow send still counts: the key's next slot is `interval` after it. A
waiter that is cancelled (its activity was) leaves the queue and takes no slot; if it was cancelled in the
instant between being granted a slot and using it, the slot is handed on.

Time comes from an injected clock and sleep so the tests run on a virtual clock. Keys with nobody waiting
and a slot in the past are forgotten once the table is big: a bounded memory.

The pacer lives in one worker process and knows nothing of the others: with N workers a key can see up to N
sends per interval. That is deliberate: a shared limiter would need shared state (Temporal or a store), and
Slack and Twilio tolerate short bursts; the 429 handling stays the backstop.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from tocsin.channels.base import Channel, Message

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

# Long enough to space a burst of about ten sends to one key; short against the default 30 s delivery timeout.
MAX_WAIT = 10.0
# Forget idle keys once the table is this big: a bounded memory.
_PRUNE_AT = 1024
# Temporal's default priority key (tocsin.policy.priority.DEFAULT): what a send that names none is ranked as.
DEFAULT_PRIORITY = 3


@dataclass(frozen=True)
class Pace:
    """How one message is paced: `interval` seconds apart from others with the same `key`."""

    interval: float
    key: str


@dataclass(frozen=True)
class Urgency:
    """Which waiter gets a key's next slot: pages first, then the lower priority key (1 first)."""

    page: bool = False
    priority: int = DEFAULT_PRIORITY


def pace_of(channel: Channel, message: Message) -> Pace:
    """The adapter's own interval and key for `message` (see the module docstring)."""
    interval = getattr(channel, "min_interval", 0.0)
    keyer = getattr(channel, "pace_key", None)
    key = keyer(message) if callable(keyer) else ""
    return Pace(float(interval) if isinstance(interval, int | float) else 0.0, str(key))


@dataclass(order=True)
class _Waiter:
    rank: tuple[int, int, int]  # (0 for a page else 1, priority key, arrival number): the heap's order
    granted: asyncio.Future[None] = field(compare=False)
    # Set by the grant: the key's next slot before and after it, to hand the slot back if the waiter is
    # cancelled before it sends.
    before: float = field(default=0.0, compare=False)
    after: float = field(default=0.0, compare=False)


@dataclass
class _Lane:
    """One (channel, key): when it may send next, who waits for it and the task handing out its slots."""

    interval: float
    next: float = float("-inf")
    queue: list[_Waiter] = field(default_factory=list)
    dispatcher: asyncio.Task[None] | None = None

    def idle(self, now: float) -> bool:
        return not self.queue and (self.dispatcher is None or self.dispatcher.done()) and self.next <= now


class Pacer:
    """In-process and per worker: one instance shared by every delivery this process runs, on one event loop
    (the lanes are touched only between awaits, so no lock is needed)."""

    def __init__(self, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep, max_wait: float = MAX_WAIT) -> None:
        self._clock = clock
        self._sleep = sleep
        self.max_wait = max_wait
        self._lanes: dict[tuple[str, str], _Lane] = {}
        self._arrivals = itertools.count()

    async def wait(
        self, channel: str, pace: Pace, max_wait: float | None = None, urgency: Urgency = Urgency()
    ) -> float:
        """Wait for this message's slot (or its cap); returns the seconds waited."""
        if pace.interval <= 0:
            return 0.0
        start = self._clock()
        lane = self._lane(channel, pace, start)
        cap = self.max_wait if max_wait is None else min(self.max_wait, max_wait)
        if not lane.queue and lane.next <= start:
            lane.next = start + pace.interval
            return 0.0
        if cap <= 0:
            return self._overflow(lane, start, start)
        rank = (0 if urgency.page else 1, urgency.priority, next(self._arrivals))
        waiter = _Waiter(rank, asyncio.get_running_loop().create_future())
        heapq.heappush(lane.queue, waiter)
        self._dispatch(lane)
        timer = asyncio.ensure_future(self._sleep(cap))
        try:
            await asyncio.wait((waiter.granted, timer), return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            self._leave(lane, waiter)
            raise
        finally:
            timer.cancel()
        now = self._clock()
        if waiter.granted.done():
            return now - start
        # The cap came first: out of the queue and sent anyway.
        self._leave(lane, waiter)
        return self._overflow(lane, start, now)

    def _lane(self, channel: str, pace: Pace, now: float) -> _Lane:
        slot = (channel, pace.key)
        lane = self._lanes.get(slot)
        if lane is None:
            if len(self._lanes) >= _PRUNE_AT:
                self._lanes = {k: v for k, v in self._lanes.items() if not v.idle(now)}
            lane = self._lanes[slot] = _Lane(pace.interval)
        lane.interval = pace.interval
        return lane

    @staticmethod
    def _overflow(lane: _Lane, start: float, now: float) -> float:
        # A capped send goes before its slot but still counts against the vendor's budget: the key's next slot
        # is an interval after it, so the queue does not also send a burst on top of the overflow.
        lane.next = max(lane.next, now + lane.interval)
        return now - start

    def _leave(self, lane: _Lane, waiter: _Waiter) -> None:
        """`waiter` will not send: out of the queue, or its slot back to the key if it was just granted."""
        if not waiter.granted.done():
            waiter.granted.cancel()
            lane.queue.remove(waiter)
            heapq.heapify(lane.queue)
            if not lane.queue:
                self._stop(lane)  # nobody left to hand a slot to
        elif lane.next == waiter.after:
            # Granted but never sent, and nobody has sent since: the slot is free again for whoever is next
            # (the dispatcher sleeps until the slot after it, so it starts over).
            lane.next = waiter.before
            self._stop(lane)
            self._dispatch(lane)

    @staticmethod
    def _stop(lane: _Lane) -> None:
        if lane.dispatcher is not None and not lane.dispatcher.done():
            lane.dispatcher.cancel()
        lane.dispatcher = None

    def _dispatch(self, lane: _Lane) -> None:
        if lane.queue and (lane.dispatcher is None or lane.dispatcher.done()):
            lane.dispatcher = asyncio.get_running_loop().create_task(self._hand_out(lane))

    async def _hand_out(self, lane: _Lane) -> None:
        """Give each slot of the lane, as it comes due, to the most urgent waiter; ends when nobody waits.
        Waiters leave the queue themselves (cap, cancellation), so every queued waiter is still waiting."""
        while lane.queue:
            now = self._clock()
            if now < lane.next:
                await self._sleep(lane.next - now)
                continue
            waiter = heapq.heappop(lane.queue)
            waiter.before, waiter.after = lane.next, now + lane.interval
            lane.next = waiter.after
            waiter.granted.set_result(None)
