"""Pacing: at most one send per (channel, pacing key) per the vendor's interval, so a burst of incidents
cannot get Tocsin rate-limited or banned by a vendor.

Each adapter says its vendor's limit where it is implemented: a class attribute `min_interval` (seconds
between two sends under one key), and optionally a method `pace_key(message)` naming what the vendor counts
against (Slack: the channel posted to). Without `pace_key` the whole adapter is one key: its one sending
number, routing key, webhook URL or SMTP relay. An adapter without `min_interval` (a test double, the
outbox) is not paced.

Slots are reserved in arrival order: a send waits until `interval` after the previous one under its key. A
wait is capped (`max_wait`) so that a delivery still fits in its activity's start-to-close timeout; past the
cap it is sent anyway, and the vendor's 429 with Retry-After (handled in the delivery activity) takes over.

The pacer lives in one worker process and knows nothing of the others: with N workers a key can see up to N
sends per interval. That is deliberate: a shared limiter would need shared state (Temporal or a store), and
Slack and Twilio tolerate short bursts; the 429 handling stays the backstop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tocsin.channels.base import Channel, Message

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

# Long enough to space a burst of about ten sends to one key; short against the default 30 s delivery timeout.
MAX_WAIT = 10.0
# Forget keys whose slot is this far in the past, once the table is this big: a bounded memory.
_PRUNE_AT = 1024


@dataclass(frozen=True)
class Pace:
    """How one message is paced: `interval` seconds apart from others with the same `key`."""

    interval: float
    key: str


def pace_of(channel: Channel, message: Message) -> Pace:
    """The adapter's own interval and key for `message` (see the module docstring)."""
    interval = getattr(channel, "min_interval", 0.0)
    keyer = getattr(channel, "pace_key", None)
    key = keyer(message) if callable(keyer) else ""
    return Pace(float(interval) if isinstance(interval, int | float) else 0.0, str(key))


class Pacer:
    """In-process and per worker: one instance shared by every delivery this process runs."""

    def __init__(self, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep, max_wait: float = MAX_WAIT) -> None:
        self._clock = clock
        self._sleep = sleep
        self.max_wait = max_wait
        self._next: dict[tuple[str, str], float] = {}  # (channel, key) -> earliest time of the next send

    def reserve(self, channel: str, key: str, interval: float, max_wait: float | None = None) -> float:
        """Take the next slot under (channel, key); returns how long to wait for it (0 when free now).

        Reading and writing the slot with no await in between is what makes this safe for concurrent
        deliveries on one event loop: no lock is needed."""
        if interval <= 0:
            return 0.0
        now = self._clock()
        cap = self.max_wait if max_wait is None else min(self.max_wait, max_wait)
        slot = (channel, key)
        due = max(now, self._next.get(slot, now))
        wait = max(0.0, min(due - now, cap))
        # A capped wait sends before its slot: the next slot follows the real send, the queue never grows
        # past the cap.
        self._next[slot] = max(self._next.get(slot, now), now + wait + interval)
        if len(self._next) > _PRUNE_AT:
            self._next = {k: t for k, t in self._next.items() if t > now}
        return wait

    async def wait(self, channel: str, pace: Pace, max_wait: float | None = None) -> float:
        """Wait for this message's slot; returns the seconds waited."""
        wait = self.reserve(channel, pace.key, pace.interval, max_wait)
        if wait > 0:
            await self._sleep(wait)
        return wait
