"""Per-channel pacing, on a virtual clock: the sleeps are recorded and the clock advanced by hand, so no
assertion depends on how fast this machine is. Who gets a busy key's next slot (pages, then the priority key,
then arrival), what caps and cancellations do to the queue, and the delivery activity's part in it."""

from __future__ import annotations

import asyncio
import dataclasses
import heapq
import itertools
import json
import random
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from temporalio.common import Priority
from temporalio.testing import ActivityEnvironment

from activities.delivery import DeliveryActivities, is_page
from activities.outbox import Outbox
from tocsin.channels.base import Message, Receipt
from tocsin.channels.pacing import Pace, Pacer, Urgency, pace_of
from tocsin.channels.pagerduty import PagerDutyChannel
from tocsin.channels.slack import SlackChannel
from tocsin.channels.twilio import TwilioSms, TwilioVoice
from tocsin.incident.contracts import Delivery


class VirtualClock:
    """`sleep` parks the caller until `run` advances the clock to its wake-up time; `slept` records each sleep
    asked for. A sleep may be cancelled (the pacer cancels its timers): the clock then skips it."""

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
        """Run `coros` together; whenever everything runnable has reached a sleep (or a future only a sleeper
        will resolve), jump to the earliest wake-up."""
        tasks = [asyncio.create_task(c) for c in coros]
        while not all(t.done() for t in tasks):
            for _ in range(50):  # let every runnable task (the pacer's own included) run until it blocks
                await asyncio.sleep(0)
            while self._sleepers and self._sleepers[0][2].done():
                heapq.heappop(self._sleepers)  # a cancelled sleep
            if not self._sleepers:
                await asyncio.sleep(0.001)  # nothing sleeps: a task waits for a thread (the outbox's file)
                continue
            self.now, _, wake = heapq.heappop(self._sleepers)
            wake.set_result(None)
        return [t.result() for t in tasks]


ROUTINE = Urgency()  # not a page, Temporal's default priority key
PAGE = Urgency(page=True)
NOTICE = Urgency(page=False, priority=1)


def send_log(
    clock: VirtualClock, pacer: Pacer
) -> tuple[list[tuple[str, float]], Callable[..., Coroutine[Any, Any, None]]]:
    """`send(channel, key, interval)` waits for its slot and notes (key, time); `label` and `urgency` for the
    tests that tell sends under one key apart."""
    sent: list[tuple[str, float]] = []

    async def send(
        channel: str, key: str, interval: float, label: str = "", urgency: Urgency = ROUTINE, at: float = 0.0
    ) -> None:
        if at:
            await clock.sleep(at)  # arrive later
        await pacer.wait(channel, Pace(interval, key), urgency=urgency)
        sent.append((label or key, clock.now))

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
    sms = Pace(1.0, "")
    assert await clock.run(pacer.wait("sms", sms)) == [0.0]
    clock.now = 0.4
    assert await clock.run(pacer.wait("sms", sms)) == [0.6]
    clock.now = 5.0  # long after: free again
    assert await clock.run(pacer.wait("sms", sms)) == [0.0]
    assert await clock.run(pacer.wait("phone", sms)) == [0.0], "calls and messages are counted apart"


async def test_a_wait_is_capped_and_the_queue_does_not_grow_past_the_cap() -> None:
    clock = VirtualClock()
    pacer = Pacer(clock=clock.time, sleep=clock.sleep, max_wait=3.0)
    slack = Pace(1.0, "#incidents")
    waits = await clock.run(*(pacer.wait("slack", slack) for _ in range(8)))
    assert waits == [0.0, 1.0, 2.0, 3.0, 3.0, 3.0, 3.0, 3.0]
    assert clock.now == 3.0, "the capped sends went out at the cap, not in slots after it"
    assert await clock.run(pacer.wait("slack", slack, max_wait=0.5)) == [0.5], "the caller's own cap is tighter"
    clock.now = 4.5  # one interval after the last capped send went out, the key is free again
    assert await clock.run(pacer.wait("slack", slack)) == [0.0]


# --- who gets the next slot -------------------------------------------------------------------------------


async def test_pages_queued_after_notices_for_one_key_are_sent_before_them() -> None:
    clock = VirtualClock()
    sent, send = send_log(clock, Pacer(clock=clock.time, sleep=clock.sleep))
    # The routing key is busy (an earlier incident's notice), then four sev1 notices queue, then two pages.
    notices = [send("pagerduty", "", 0.5, f"notice-{n}", NOTICE) for n in range(5)]
    pages = [send("pagerduty", "", 0.5, f"page-{n}", PAGE) for n in range(2)]
    await clock.run(*notices, *pages)
    assert sent == [
        ("notice-0", 0.0),
        ("page-0", 0.5),
        ("page-1", 1.0),
        ("notice-1", 1.5),
        ("notice-2", 2.0),
        ("notice-3", 2.5),
        ("notice-4", 3.0),
    ]


async def test_among_pages_priority_1_goes_before_3_and_equal_urgency_keeps_arrival_order() -> None:
    clock = VirtualClock()
    sent, send = send_log(clock, Pacer(clock=clock.time, sleep=clock.sleep))
    sev3 = Urgency(page=True, priority=3)
    sev1 = Urgency(page=True, priority=1)
    await clock.run(
        send("pagerduty", "", 0.5, "busy", NOTICE),
        send("pagerduty", "", 0.5, "sev3-a", sev3),
        send("pagerduty", "", 0.5, "notice", Urgency(priority=1)),
        send("pagerduty", "", 0.5, "sev3-b", sev3),
        send("pagerduty", "", 0.5, "sev1-a", sev1),
        send("pagerduty", "", 0.5, "sev1-b", sev1),
        send("pagerduty", "", 0.5, "sev3-c", sev3),
    )
    assert [label for label, _ in sent] == ["busy", "sev1-a", "sev1-b", "sev3-a", "sev3-b", "sev3-c", "notice"]
    assert [at for _, at in sent] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]


async def test_a_late_page_takes_the_next_slot_but_never_one_already_given() -> None:
    clock = VirtualClock()
    sent, send = send_log(clock, Pacer(clock=clock.time, sleep=clock.sleep))
    await clock.run(
        *(send("slack", "#incidents", 1.0, f"notice-{n}", NOTICE) for n in range(4)),
        send("slack", "#incidents", 1.0, "page", PAGE, at=1.5),  # arrives after notice-1 went out at 1.0
    )
    assert sent == [("notice-0", 0.0), ("notice-1", 1.0), ("page", 2.0), ("notice-2", 3.0), ("notice-3", 4.0)]


async def test_never_two_sends_under_one_key_within_the_interval_however_they_arrive() -> None:
    clock = VirtualClock()
    sent, send = send_log(clock, Pacer(clock=clock.time, sleep=clock.sleep, max_wait=60.0))
    rng = random.Random(12)
    # Eighths of a second: exact in binary, so the times below compare exactly.
    arrivals = sorted(rng.randrange(0, 96) / 8 for _ in range(40))
    urgencies = [Urgency(page=rng.random() < 0.3, priority=rng.randint(1, 5)) for _ in range(40)]
    await clock.run(
        *(send("pagerduty", "", 0.5, str(n), u, at) for n, (u, at) in enumerate(zip(urgencies, arrivals, strict=True)))
    )
    order = [int(label) for label, _ in sent]
    times = [at for _, at in sent]
    assert sorted(order) == list(range(40))
    assert all(b - a >= 0.5 for a, b in itertools.pairwise(times))
    # No slot is left unused: each send goes when the key is free again or, if it was already, on arrival.
    assert all(t == max(prev + 0.5, arrivals[n]) for prev, t, n in zip(times, times[1:], order[1:], strict=False))

    def rank(n: int) -> tuple[bool, int, int]:
        return (not urgencies[n].page, urgencies[n].priority, n)

    # Each slot went to the most urgent of those waiting for it.
    for i, (n, t) in enumerate(zip(order, times, strict=True)):
        waiting = [m for m in order[i + 1 :] if arrivals[m] < t]
        assert all(rank(n) < rank(m) for m in waiting), (n, t, waiting)


async def test_capped_waiters_overflow_and_the_next_slot_follows_them() -> None:
    clock = VirtualClock()
    sent, send = send_log(clock, Pacer(clock=clock.time, sleep=clock.sleep, max_wait=1.2))
    await clock.run(*(send("pagerduty", "", 0.5, str(n), NOTICE) for n in range(5)))
    # 0 at once, 1 and 2 in slots; 3 and 4 reach the 1.2 s cap before the slot at 1.5 and go anyway.
    assert sent == [("0", 0.0), ("1", 0.5), ("2", 1.0), ("3", 1.2), ("4", 1.2)]
    # The overflow counts against the vendor's budget: the key is busy until 1.7.
    assert await clock.run(send("pagerduty", "", 0.5, "next", PAGE)) == [None]
    assert sent[-1] == ("next", 1.7)


async def cancelled(task: asyncio.Task[None]) -> bool:
    try:
        await task
    except asyncio.CancelledError:
        return True
    return False


async def test_a_cancelled_waiter_leaves_the_queue_without_taking_a_slot() -> None:
    clock = VirtualClock()
    pacer = Pacer(clock=clock.time, sleep=clock.sleep)
    sent, send = send_log(clock, pacer)
    await clock.run(send("pagerduty", "", 0.5, "busy", NOTICE))
    page = asyncio.create_task(send("pagerduty", "", 0.5, "cancelled page", PAGE))

    async def cancel_at(at: float) -> None:
        await clock.sleep(at)
        page.cancel()

    results = await clock.run(cancelled(page), cancel_at(0.2), send("pagerduty", "", 0.5, "notice", NOTICE))
    assert results[0] is True
    # The notice had the slot at 0.5 the page would have taken, and the page never sent.
    assert sent == [("busy", 0.0), ("notice", 0.5)]
    # Nor does a waiter cancelled alone leave anything behind: the key is free one interval after the last send.
    page = asyncio.create_task(send("pagerduty", "", 0.5, "cancelled page", PAGE))
    assert await clock.run(cancelled(page), cancel_at(0.2)) == [True, None]
    assert clock.now == 0.7 and pacer._lanes["pagerduty", ""].queue == []
    clock.now = 1.0
    assert await clock.run(pacer.wait("pagerduty", Pace(0.5, ""))) == [0.0]


async def test_a_waiter_cancelled_as_it_is_granted_hands_its_slot_on() -> None:
    clock = VirtualClock()
    pacer = Pacer(clock=clock.time, sleep=clock.sleep)
    sent, send = send_log(clock, pacer)
    await clock.run(send("pagerduty", "", 0.5, "busy", NOTICE))
    page = asyncio.create_task(send("pagerduty", "", 0.5, "cancelled page", PAGE))
    await asyncio.sleep(0)  # the page queues
    (waiter,) = pacer._lanes["pagerduty", ""].queue
    # Runs in the tick of the grant, after the page's own wake-up is scheduled: the page is cancelled between
    # being given the slot and sending.
    waiter.granted.add_done_callback(lambda _: page.cancel())
    results = await clock.run(cancelled(page), send("pagerduty", "", 0.5, "notice", NOTICE))
    assert results[0] is True
    assert sent == [("busy", 0.0), ("notice", 0.5)], "the notice got the slot the page was given and did not use"


async def test_two_keys_never_wait_for_each_other() -> None:
    clock = VirtualClock()
    sent, send = send_log(clock, Pacer(clock=clock.time, sleep=clock.sleep))
    await clock.run(
        *(send("slack", "#incidents", 1.0, f"#incidents-{n}", NOTICE) for n in range(5)),
        send("slack", "#leadership", 1.0, "#leadership-page", PAGE, at=0.3),
        send("slack", "#leadership", 1.0, "#leadership-notice", ROUTINE, at=0.3),
        send("email", "#incidents", 1.0, "email", ROUTINE, at=0.3),  # the same key on another channel
    )
    assert [at for label, at in sent if label.startswith("#incidents")] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert ("#leadership-page", 0.3) in sent and ("#leadership-notice", 1.3) in sent
    assert ("email", 0.3) in sent


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
    waited = []
    for n in range(4):
        start = clock.now
        await clock.run(env.run(activities.deliver, delivery(n, "slack", "#incidents")))
        waited.append(clock.now - start)
    assert waited == [0.0, 0.5, 0.5, 0.5], "capped at 1.5 s / 3, not the pacer's own 10 s"
    slept = len(clock.slept)
    await clock.run(*(env.run(activities.deliver, delivery(10 + n, "sms", "+1")) for n in range(3)))
    assert len(clock.slept) == slept and clock.now == 1.5, "a channel without an interval is not paced"


def test_a_page_is_told_by_its_step_in_the_idempotency_key() -> None:
    def key(idempotency_key: str) -> Delivery:
        return delivery(0, "pagerduty", "P1").model_copy(update={"idempotency_key": idempotency_key})

    assert is_page(key("incident-k/1a2b3c4d/page/0/1"))
    assert is_page(key("incident-svc/db/1a2b3c4d/page/2/3/alice")), "a roster's person, a key with a slash"
    assert not is_page(key("incident-k/1a2b3c4d/exhausted/#sre"))
    assert not is_page(key("incident-k/1a2b3c4d/sync/2/pagerduty"))
    assert not is_page(key("incident-k/1a2b3c4d/management/0"))
    assert not is_page(key("postmortem-k/1a2b3c4d/page/0/1")), "only an incident pages"


async def test_the_delivery_activity_sends_pages_first_then_by_the_activitys_priority_key(tmp_path: Path) -> None:
    clock = VirtualClock()
    triggered: list[str] = []

    def events_api(request: httpx.Request) -> httpx.Response:
        triggered.append(json.loads(request.content)["payload"]["custom_details"]["delivery"])
        return httpx.Response(202, json={"status": "success", "dedup_key": "k"})

    pagerduty = PagerDutyChannel("a" * 32, transport=httpx.MockTransport(events_api))
    pacer = Pacer(clock=clock.time, sleep=clock.sleep)
    activities = DeliveryActivities(Outbox(tmp_path / "outbox.jsonl"), {"pagerduty": pagerduty}, pacer)

    async def deliver(step: str, priority: int | None) -> None:
        env = activity_env(timedelta(seconds=30))
        env.info = dataclasses.replace(env.info, priority=Priority(priority_key=priority))
        d = delivery(0, "pagerduty", "P1").model_copy(update={"idempotency_key": f"incident-k/1a2b3c4d/{step}"})
        await env.run(activities.deliver, d)

    await clock.run(
        deliver("action/emergency-response", 1),  # a sev1's notice: the routing key is busy
        deliver("breach/response/#sre", 1),
        deliver("storm-over/20/#sre", 4),
        deliver("page/0/1", None),  # a sev3's page: no key on the activity is Temporal's default, 3
        deliver("resolved/#sre", 3),
        deliver("page/0/2", 1),  # a sev1's page
    )
    assert triggered == [
        "incident-k/1a2b3c4d/action/emergency-response",
        "incident-k/1a2b3c4d/page/0/2",
        "incident-k/1a2b3c4d/page/0/1",
        "incident-k/1a2b3c4d/breach/response/#sre",
        "incident-k/1a2b3c4d/resolved/#sre",
        "incident-k/1a2b3c4d/storm-over/20/#sre",
    ]
    assert clock.now == 2.5, "one trigger per 0.5 s"
