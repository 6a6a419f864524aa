"""Group commit per incident key (tocsin/intake/coalesce.py): concurrent payloads share one call, nobody is
answered before the call carrying their alerts is accepted, and a failure reaches exactly its riders."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.support.alerts import alert
from tests.support.harness import counting_client
from tocsin.incident.client import get_incident, send_update
from tocsin.incident.contracts import AlertBatch, AlertEvent, IncidentInput
from tocsin.incident.updates import ResolveRequest
from tocsin.intake.coalesce import SignalCoalescer, weight
from tocsin.intake.ingest import ingest_alerts
from tocsin.intake.sender import AlertsSender
from tocsin.policy.schema import Policy
from tocsin.settings import Settings


def batch(*fingerprints: str, status: str = "firing") -> AlertBatch:
    return AlertBatch.model_validate({"events": [{"fingerprint": f, "status": status} for f in fingerprints]})


class Recorder:
    """A fake Temporal call: records each call's key and fingerprints; holds each until released."""

    def __init__(self, fail: set[int] | None = None) -> None:
        self.calls: list[tuple[str, list[str], bool]] = []
        self.gate = asyncio.Event()
        self.fail = fail or set()

    async def send(self, key: str, start: IncidentInput | None, sent: AlertBatch) -> bool:
        index = len(self.calls)
        self.calls.append((key, [e.fingerprint for e in sent.events], start is not None))
        await self.gate.wait()
        if index in self.fail:
            raise RuntimeError(f"call {index} failed")
        return True


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_payloads_arriving_during_a_call_ride_the_next_one_in_order() -> None:
    fake = Recorder()
    coalescer = SignalCoalescer(fake.send, interval=0)
    first = asyncio.create_task(coalescer.send("k", None, batch("a")))
    await settle()
    later = [asyncio.create_task(coalescer.send("k", None, batch(f"b{i}", f"c{i}"))) for i in range(10)]
    await settle()
    assert not any(t.done() for t in [first, *later]), "nobody is answered before their call is accepted"
    fake.gate.set()
    assert await asyncio.gather(first, *later) == [True] * 11
    assert [c[1] for c in fake.calls] == [["a"], [f for i in range(10) for f in (f"b{i}", f"c{i}")]]
    assert coalescer.calls == 2


async def test_keys_do_not_wait_for_each_other() -> None:
    fake = Recorder()
    coalescer = SignalCoalescer(fake.send, interval=0)
    tasks = [asyncio.create_task(coalescer.send(f"k{i}", None, batch("x"))) for i in range(5)]
    await settle()
    assert sorted(c[0] for c in fake.calls) == [f"k{i}" for i in range(5)], "five keys, five calls in flight"
    fake.gate.set()
    await asyncio.gather(*tasks)


async def test_a_failed_call_fails_its_riders_only_and_the_next_call_goes_on() -> None:
    fake = Recorder(fail={1})
    coalescer = SignalCoalescer(fake.send, interval=0)
    first = asyncio.create_task(coalescer.send("k", None, batch("a")))
    await settle()
    riders = [asyncio.create_task(coalescer.send("k", None, batch(f"r{i}"))) for i in range(3)]
    await settle()
    fake.gate.set()
    assert await first is True
    outcomes = await asyncio.gather(*riders, return_exceptions=True)
    assert all(isinstance(o, RuntimeError) and "call 1 failed" in str(o) for o in outcomes)
    # The failure does not stick: the next payload makes its own call and succeeds.
    assert await coalescer.send("k", None, batch("after")) is True
    assert [c[1] for c in fake.calls][-1] == ["after"]


async def test_one_call_holds_at_most_the_batch_bound_in_events_and_bytes() -> None:
    fake = Recorder()
    coalescer = SignalCoalescer(fake.send, max_events=5, max_bytes=10_000, interval=0)
    first = asyncio.create_task(coalescer.send("k", None, batch("a")))
    await settle()
    riders = [asyncio.create_task(coalescer.send("k", None, batch(f"p{i}-1", f"p{i}-2"))) for i in range(5)]
    await settle()
    fake.gate.set()
    await asyncio.gather(first, *riders)
    assert [len(c[1]) for c in fake.calls] == [1, 4, 4, 2], "whole payloads only, never over five events"

    big = AlertEvent(fingerprint="big", status="firing", labels={"v": "x" * 6000})
    assert weight(big) > 6000
    fake2 = Recorder()
    small = SignalCoalescer(fake2.send, max_events=100, max_bytes=10_000, interval=0)
    fake2.gate.set()
    head = asyncio.create_task(small.send("k", None, batch("a")))
    riders = [asyncio.create_task(small.send("k", None, AlertBatch(events=[big]))) for _ in range(3)]
    await asyncio.gather(head, *riders)
    assert [c[1].count("big") for c in fake2.calls] == [1, 1, 1], "two 6 KB payloads never share a 10 KB call"
    assert fake2.calls[0][1] == ["a", "big"]


async def test_a_caller_that_gives_up_does_not_cancel_the_call_others_ride() -> None:
    fake = Recorder()
    coalescer = SignalCoalescer(fake.send, interval=0)
    leaving = asyncio.create_task(coalescer.send("k", None, batch("a")))
    await settle()
    staying = asyncio.create_task(coalescer.send("k", None, batch("b")))
    await settle()
    leaving.cancel()
    await settle()
    fake.gate.set()
    assert await staying is True
    assert [c[1] for c in fake.calls] == [["a"], ["b"]]


async def test_any_firing_payload_may_open_the_incident_a_resolution_alone_never(default_policy: Policy) -> None:
    from tocsin.intake.routing import incident_key, plan_for_alert

    fake = Recorder()
    coalescer = SignalCoalescer(fake.send, interval=0)
    firing = alert()
    key = incident_key(default_policy, firing)
    from datetime import UTC, datetime

    start = plan_for_alert(default_policy, firing, key, datetime.now(UTC))
    head = asyncio.create_task(coalescer.send(key, None, batch("old", status="resolved")))
    await settle()
    tail = [
        asyncio.create_task(coalescer.send(key, None, batch("gone", status="resolved"))),
        asyncio.create_task(coalescer.send(key, start, batch(firing.fingerprint))),
    ]
    await settle()
    fake.gate.set()
    await asyncio.gather(head, *tail)
    assert [c[2] for c in fake.calls] == [False, True]


async def test_concurrent_posts_to_one_incident_share_calls_and_every_alert_counts(
    env: WorkflowEnvironment, workers: Settings, default_policy: Policy
) -> None:
    client, counter = counting_client(env)
    coalescer = SignalCoalescer(AlertsSender(client))
    alerts = [
        alert(name="DiskFilling", service="coalesced", fingerprint=f"pod-{i}", severity="warning") for i in range(60)
    ]
    results = await asyncio.gather(*(ingest_alerts(client, default_policy, [a], coalescer=coalescer) for a in alerts))
    (key,) = {k for r in results for k in r.keys}
    assert all(r.opened_or_updated == 1 for r in results)
    assert coalescer.calls == sum(counter.calls.values()) < 60 / 2, counter.calls
    await env.sleep(timedelta(seconds=2))
    state = await get_incident(env.client, key)
    assert len(state.alerts) == 60
    assert Counter(state.alert_events) == Counter({"firing": 60})
    assert [e.kind for e in state.timeline].count("opened") == 1
    await send_update(env.client, key, "resolve", ResolveRequest(by="test"))


@pytest.mark.parametrize("events", [1000])
async def test_the_batch_bound_matches_the_signal_model(events: int) -> None:
    from tocsin.intake import coalesce

    assert coalesce.MAX_EVENTS == AlertBatch.model_fields["events"].metadata[1].max_length == events


class FakeTime:
    """A clock that only moves when a sleeper sleeps: every wait is recorded, none takes real time."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 3))
        self.now += seconds
        await asyncio.sleep(0)


class TimedRecorder(Recorder):
    """Each call takes `took` seconds of the fake clock."""

    def __init__(self, time: FakeTime, took: list[float]) -> None:
        super().__init__()
        self.time, self.took = time, took
        self.gate.set()

    async def send(self, key: str, start: IncidentInput | None, sent: AlertBatch) -> bool:
        self.time.now += self.took.pop(0)
        return await super().send(key, start, sent)


async def test_a_keys_next_call_waits_three_times_as_long_as_its_last_one_took_at_most_the_interval() -> None:
    time = FakeTime()
    fake = TimedRecorder(time, [0.01, 0.1, 2.0, 0.01, 0.01])
    coalescer = SignalCoalescer(fake.send, interval=0.5, clock=time.clock, sleep=time.sleep)
    assert await coalescer.send("k", None, batch("first")) is True
    assert time.sleeps == [], "a key's first call goes at once: an incident opens without waiting"
    await coalescer.send("k", None, batch("quick"))
    assert time.sleeps == [0.03], "a quick server: a pause nobody notices"
    await coalescer.send("k", None, batch("slow"))
    assert time.sleeps == [0.03, 0.3], "a busy server: the pause grows with the call"
    riders = [asyncio.create_task(coalescer.send("k", None, batch(f"r{i}"))) for i in range(3)]
    assert await asyncio.gather(*riders) == [True] * 3
    assert time.sleeps == [0.03, 0.3, 0.5], "never longer than the interval"
    assert [c[1] for c in fake.calls][-1] == ["r0", "r1", "r2"], "everything waiting rides the next call"
    await coalescer.send("other", None, batch("x"))
    assert len(time.sleeps) == 3, "another key does not wait for this one"
