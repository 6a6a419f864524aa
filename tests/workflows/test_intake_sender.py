"""A long-lived sender signals incidents it knows are open, without their 13 KB start input, and opens a new
incident when the one it remembered has closed: the same outcome as signal-with-start every time."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from tests.support.alerts import alert
from tests.support.harness import counting_client
from tocsin.incident.client import get_incident, send_update
from tocsin.incident.contracts import AlertBatch
from tocsin.incident.updates import ResolveRequest
from tocsin.intake.plan import event_of
from tocsin.intake.routing import incident_key, plan_for_alert
from tocsin.intake.sender import AlertsSender
from tocsin.policy.schema import Policy
from tocsin.settings import Settings


async def test_known_open_incidents_get_a_plain_signal_and_a_closed_one_is_opened_again(
    env: WorkflowEnvironment, workers: Settings, default_policy: Policy
) -> None:
    client, counter = counting_client(env)
    sender = AlertsSender(client)
    firing = alert(name="QueueBacklog", service="sender-test", severity="warning")
    key = incident_key(default_policy, firing)
    start = plan_for_alert(default_policy, firing, key, datetime.now(UTC))
    one = AlertBatch(events=[event_of(firing)])

    assert await sender(key, start, one) is True
    assert counter.calls == Counter({"start": 1}), "an unknown key: signal-with-start"
    assert await sender(key, start, one) is True
    assert await sender(key, start, one) is True
    assert counter.calls == Counter({"start": 1, "signal": 2}), "a known open key: plain signals"
    await env.sleep(timedelta(seconds=2))
    first = await get_incident(env.client, key)
    assert first.alerts[firing.fingerprint].count == 3

    await send_update(env.client, key, "resolve", ResolveRequest(by="test"))
    handle = env.client.get_workflow_handle(f"incident-{key}")
    await handle.result()
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED

    # Remembered as open but closed since: the signal is refused, the alert opens a new incident.
    assert await sender(key, start, one) is True
    assert counter.calls == Counter({"start": 2, "signal": 3})
    await env.sleep(timedelta(seconds=2))
    again = await get_incident(env.client, key)
    assert again.status == "triggered"
    assert again.opened_at > first.opened_at
    await send_update(env.client, key, "resolve", ResolveRequest(by="test"))


async def test_resolutions_alone_never_open_an_incident(
    env: WorkflowEnvironment, workers: Settings, default_policy: Policy
) -> None:
    client, counter = counting_client(env)
    sender = AlertsSender(client)
    gone = alert(name="QueueBacklog", service="never-opened", status="resolved")
    key = incident_key(default_policy, gone)
    assert await sender(key, None, AlertBatch(events=[event_of(gone)])) is False
    assert counter.calls == Counter({"signal": 1})


def test_it_remembers_a_bounded_number_of_keys(env: WorkflowEnvironment) -> None:
    sender = AlertsSender(env.client, remembered=3)
    for key in "abcde":
        sender._remember(key)
    sender._remember("c")
    assert list(sender._open) == ["d", "e", "c"], "the oldest are forgotten first; a reached key is fresh"
