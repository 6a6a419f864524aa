"""Per-channel pacing, on a virtual clock: the sleeps are recorded and the clock advanced by hand, so no
assertion depends on how fast this machine is."""

from __future__ import annotations

import asyncio
import dataclasses
import heapq
import itertools
import json
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from temporalio.testing import ActivityEnvironment

from activities.delivery import DeliveryActivities
from activities.outbox import Outbox
from tocsin.channels.base import Message, Receipt
from tocsin.channels.pacing import Pace, Pacer, pace_of
from tocsin.channels.pagerduty import PagerDutyChannel
from tocsin.channels.slack import SlackChannel
from tocsin.channels.twilio import TwilioSms, TwilioVoice
from tocsin.models import Delivery


class VirtualClock:
    """`sleep` parks the caller until `run` advances the clock to its wake-up time; `sent` records when each
    send happened on this clock."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        wake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + seconds, next(self._order), wake))
        await wake

    async def run(self, *coros: Coroutine[Any, Any, Any]) -> list[Any]:
        """Run `coros` together; whenever every unfinished one sleeps, jump to the earliest wake-up."""
        tasks = [asyncio.create_task(c) for c in coros]
        while not all(t.done() for t in tasks):
            for _ in range(20):  # let every runnable task reach its next sleep or finish
                await asyncio.sleep(0)
            pending = sum(not t.done() for t in tasks)
            if pending and len(self._sleepers) == pending:
                self.now, _, wake = heapq.heappop(self._sleepers)
                wake.set_result(None)
        return [t.result() for t in tasks]


def send_log(
    clock: VirtualClock, pacer: Pacer
) -> tuple[list[tuple[str, float]], Callable[..., Coroutine[Any, Any, None]]]:
    sent: list[tuple[str, float]] = []

    async def send(channel: str, key: str, interval: float) -> None:
        await pacer.wait(channel, Pace(interval, key))
        sent.append((key, clock.now))

    return sent, send


async def test_sends_to_one_slack_channel_are_a_second_apart_and_two_channels_do_not_wait() -> None:
    clock = VirtualClock()
    pacer = Pacer(clock=clock.time, sleep=clock.sleep)
    sent, send = send_log(clock, pacer)
    burst = [send("slack", "#incidents", 1.0) for _ in range(5)]
    await clock.run(*burst, send("slack", "#leadership", 1.0))

    incidents = [at for key, at in sent if key == "#incidents"]
    assert incidents == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert all(b - a >= 1.0 for a, b in itertools.pairwise(incidents))
    # The other channel went out at once, not behind the first channel's queue.
    assert [at for key, at in sent if key == "#leadership"] == [0.0]


async def test_a_later_send_waits_only_for_what_is_left_of_the_interval() -> None:
    clock = VirtualClock()
    pacer = Pacer(clock=clock.time, sleep=clock.sleep)
    assert pacer.reserve("sms", "", 1.0) == 0.0
    clock.now = 0.4
    assert pacer.reserve("sms", "", 1.0) == 0.6
    clock.now = 5.0  # long after: free again
    assert pacer.reserve("sms", "", 1.0) == 0.0
    assert pacer.reserve("phone", "", 1.0) == 0.0, "calls and messages are counted apart"


async def test_a_wait_is_capped_and_the_queue_does_not_grow_past_the_cap() -> None:
    clock = VirtualClock()
    pacer = Pacer(clock=clock.time, sleep=clock.sleep, max_wait=3.0)
    waits = [pacer.reserve("slack", "#incidents", 1.0) for _ in range(8)]
    assert waits == [0.0, 1.0, 2.0, 3.0, 3.0, 3.0, 3.0, 3.0]
    assert pacer.reserve("slack", "#incidents", 1.0, max_wait=0.5) == 0.5, "the caller's own cap is tighter"
    clock.now = 4.0  # one interval after the capped sends went out, the key is free again
    assert pacer.reserve("slack", "#incidents", 1.0) == 0.0


def test_each_adapter_names_its_vendors_interval_and_what_it_counts_against() -> None:
    at = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)

    def msg(target: str) -> Message:
        return Message(idempotency_key="k/1", incident="KEY-1", channel="x", target=target, text="t", at=at)

    slack = SlackChannel("xoxb-test", team_channel="#team-{team}")
    assert pace_of(slack, msg("#incidents")) == Pace(1.0, "#incidents")
    # A plain post in the war room and the war room summary are one Slack channel.
    assert pace_of(slack, msg("post:#inc-KEY-1")) == pace_of(slack, msg("#inc-key-1")) == Pace(1.0, "#inc-key-1")
    assert pace_of(slack, msg("team:payments")) == Pace(1.0, "#team-payments")
    sms = TwilioSms("AC1", "token", "+15550000000")
    # Twilio counts per sending number, not per recipient: two recipients share one key.
    assert pace_of(sms, msg("+4915100000001")) == pace_of(sms, msg("+4915100000002")) == Pace(1.0, "")
    assert pace_of(TwilioVoice("AC1", "token", "+15550000000"), msg("+1")).interval == 1.0
    assert pace_of(PagerDutyChannel("a" * 32), msg("P123")) == Pace(0.5, "")


# --- through the delivery activity ---------------------------------------------------------------------------


class Unpaced:
    """A channel with no `min_interval`: a test double or anything that is not a vendor."""

    name = "sms"

    async def send(self, message: Message) -> Receipt:
        return Receipt(provider_id=message.idempotency_key)

    async def check(self) -> str:
        return "ok"


def delivery(n: int, channel: str, target: str) -> Delivery:
    return Delivery(
        idempotency_key=f"incident-k/abc/page/0/{n}",
        incident="k",
        channel=channel,
        target=target,
        message="please acknowledge",
        at=datetime(2026, 11, 27, 12, 0, tzinfo=UTC),
    )


def activity_env(timeout: timedelta) -> ActivityEnvironment:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, start_to_close_timeout=timeout)
    return env


async def test_the_delivery_activity_paces_slack_posts_but_never_the_outbox(tmp_path: Path) -> None:
    clock = VirtualClock()
    posted: list[tuple[str, float]] = []

    def slack_api(request: httpx.Request) -> httpx.Response:
        channel = json.loads(request.content)["channel"]
        posted.append((channel, clock.now))
        return httpx.Response(200, json={"ok": True, "channel": channel, "ts": f"{len(posted)}.0"})

    slack = SlackChannel("xoxb-test", transport=httpx.MockTransport(slack_api))
    outbox = Outbox(tmp_path / "outbox.jsonl")
    activities = DeliveryActivities(outbox, {"slack": slack}, Pacer(clock=clock.time, sleep=clock.sleep))
    env = activity_env(timedelta(seconds=30))

    async def deliver(d: Delivery) -> None:
        await env.run(activities.deliver, d)

    await clock.run(*(deliver(delivery(n, "slack", "#incidents")) for n in range(3)))
    assert posted == [("#incidents", 0.0), ("#incidents", 1.0), ("#incidents", 2.0)]

    # The outbox (a channel without an adapter) is written at once, however many arrive together.
    slept = len(clock.slept)
    await clock.run(*(deliver(delivery(10 + n, "email", "oncall@example.com")) for n in range(5)))
    assert len(clock.slept) == slept and clock.now == 2.0
    assert len(outbox.read()) == 5


async def test_the_wait_keeps_to_a_third_of_the_activity_timeout(tmp_path: Path) -> None:
    clock = VirtualClock()
    pacer = Pacer(clock=clock.time, sleep=clock.sleep)
    slack = SlackChannel("xoxb-test", transport=httpx.MockTransport(lambda _: httpx.Response(200, json={"ok": True})))
    activities = DeliveryActivities(Outbox(tmp_path / "outbox.jsonl"), {"slack": slack, "sms": Unpaced()}, pacer)
    env = activity_env(timedelta(seconds=1.5))
    for n in range(4):
        await clock.run(env.run(activities.deliver, delivery(n, "slack", "#incidents")))
    assert clock.slept == [0.5, 0.5, 0.5], "capped at 1.5 s / 3, not the pacer's own 10 s"
    await clock.run(*(env.run(activities.deliver, delivery(10 + n, "sms", "+1")) for n in range(3)))
    assert len(clock.slept) == 3, "a channel without an interval is not paced"
