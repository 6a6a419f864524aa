"""From received alerts to incidents: race-free dedup, one call per key, resolution and auto-resolution."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from temporalio.client import (
    Client,
    Interceptor,
    OutboundInterceptor,
    StartWorkflowInput,
    WorkflowExecutionStatus,
)
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from tests.support.alerts import alert
from tests.support.harness import counting_client, outbox
from tocsin.incident.client import get_incident, send_update
from tocsin.incident.updates import AcknowledgeRequest, ResolveRequest
from tocsin.intake.contracts import NormalizedAlert
from tocsin.intake.ingest import group_by_incident, ingest_alerts
from tocsin.intake.routing import incident_key, severity_for
from tocsin.policy.schema import Policy
from tocsin.settings import Settings


def test_keys_follow_the_policy_group_by_and_never_collide(default_policy: Policy) -> None:
    a, b = alert(), alert(fingerprint="other-pod")
    assert incident_key(default_policy, a) == incident_key(default_policy, b), "same labels, same incident"
    assert incident_key(default_policy, a) != incident_key(default_policy, alert(environment="staging"))
    # Slugs alike, values different: the hash keeps them apart.
    x = alert(name="a-b", service="c")
    y = alert(name="a", service="b-c")
    assert incident_key(default_policy, x) != incident_key(default_policy, y)
    pd = a.model_copy(update={"dedup_key": "srv01/HTTP"})
    assert incident_key(default_policy, pd).startswith("pd-srv01-http-")


def test_severity_comes_from_the_response_workflow_then_the_label(default_policy: Policy) -> None:
    assert severity_for(default_policy, alert(severity="warning")) is None  # service_down_detection says sev1
    assert severity_for(default_policy, alert(name="DiskFilling", severity="critical")) == "sev1"
    assert severity_for(default_policy, alert(name="DiskFilling", severity="Warning")) == "sev3"
    assert severity_for(default_policy, alert(name="DiskFilling")) is None  # -> lifecycle.default_severity


async def test_fifty_concurrent_posts_of_one_alert_make_exactly_one_incident(
    env: WorkflowEnvironment, workers: Settings, default_policy: Policy
) -> None:
    one = alert()
    results = await asyncio.gather(*(ingest_alerts(env.client, default_policy, [one]) for _ in range(50)))
    keys = {k for r in results for k in r.keys}
    assert len(keys) == 1
    (key,) = keys
    await env.sleep(timedelta(seconds=5))
    state = await get_incident(env.client, key)
    assert state.severity == "sev1"
    assert state.title == "Service checkout experiencing outage"
    assert state.alerts[one.fingerprint].count == 50
    assert [e.kind for e in state.timeline].count("opened") == 1
    # One incident pages once: a second run would have paged again.
    assert [e["id"].split("/", 2)[2] for e in outbox(workers, key)].count("page/0/1") == 1
    await send_update(env.client, key, "resolve", ResolveRequest(by="test"))


async def test_five_hundred_alerts_over_twenty_keys_cost_twenty_calls(
    env: WorkflowEnvironment, workers: Settings, default_policy: Policy
) -> None:
    client, counter = counting_client(env)
    alerts = [
        alert(name="DiskFilling", service=f"svc-{k}", fingerprint=f"svc-{k}-pod-{i}", severity="warning")
        for k in range(20)
        for i in range(25)
    ]
    result = await ingest_alerts(client, default_policy, alerts)
    assert result.alerts == 500
    assert len(result.keys) == 20
    assert result.opened_or_updated == 20
    assert counter.calls == Counter({"start": 20})  # signal-with-start: one call per incident
    for key in result.keys:
        state = await get_incident(env.client, key)
        assert len(state.alerts) == 25
        assert state.severity == "sev3"
        assert all(record.count == 1 for record in state.alerts.values())
        await send_update(env.client, key, "resolve", ResolveRequest(by="test"))


async def test_a_resolution_never_opens_an_incident(
    env: WorkflowEnvironment, workers: Settings, default_policy: Policy
) -> None:
    resolved = alert(name="Nothing", status="resolved")
    result = await ingest_alerts(env.client, default_policy, [resolved])
    assert result.opened_or_updated == 0
    handle = env.client.get_workflow_handle(f"incident-{result.keys[0]}")
    with pytest.raises(RPCError):
        await handle.describe()


async def test_quiet_alerts_auto_resolve_after_the_flap_window(
    env: WorkflowEnvironment, workers: Settings, default_policy: Policy
) -> None:
    firing = alert(name="QueueBacklog", severity="warning")
    (key,) = (await ingest_alerts(env.client, default_policy, [firing])).keys
    await env.sleep(timedelta(minutes=2))
    await ingest_alerts(env.client, default_policy, [firing.model_copy(update={"status": "resolved"})])
    # It flaps back within the window: the clock starts again.
    await env.sleep(timedelta(minutes=3))
    await ingest_alerts(env.client, default_policy, [firing])
    await ingest_alerts(env.client, default_policy, [firing.model_copy(update={"status": "resolved"})])
    await env.sleep(timedelta(minutes=4))
    assert (await get_incident(env.client, key)).status == "triggered"
    await env.sleep(timedelta(minutes=2))
    handle = env.client.get_workflow_handle(f"incident-{key}")
    final = await get_incident(env.client, key)
    assert final.status == "resolved"
    assert final.resolved_by == "tocsin"
    assert final.resolution_summary == "all 1 alerts resolved and stayed quiet for 5m 0s"
    await handle.result()
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED

    # A new firing after resolution is a new incident under the same key.
    await ingest_alerts(env.client, default_policy, [firing])
    await env.sleep(timedelta(seconds=2))
    reopened = await get_incident(env.client, key)
    assert reopened.status == "triggered"
    assert reopened.opened_at > final.resolved_at  # type: ignore[operator]
    await send_update(env.client, key, "resolve", ResolveRequest(by="test"))


async def test_an_acknowledged_incident_is_held_open_when_its_alerts_clear(
    env: WorkflowEnvironment, workers: Settings, default_policy: Policy
) -> None:
    firing = alert(name="QueueBacklog", service="billing", severity="warning")
    (key,) = (await ingest_alerts(env.client, default_policy, [firing])).keys
    await send_update(env.client, key, "acknowledge", AcknowledgeRequest(by="alice"))
    await ingest_alerts(env.client, default_policy, [firing.model_copy(update={"status": "resolved"})])
    await env.sleep(timedelta(minutes=30))
    state = await get_incident(env.client, key)
    assert state.status == "acknowledged"
    assert state.alerts_resolved_at is not None
    await send_update(env.client, key, "resolve", ResolveRequest(by="alice"))


async def test_a_pagerduty_acknowledge_event_acknowledges(
    env: WorkflowEnvironment, workers: Settings, default_policy: Policy
) -> None:
    trigger = NormalizedAlert(
        source="pagerduty",
        status="firing",
        labels={"alertname": "pagerduty", "service": "api", "severity": "error"},
        summary="api 5xx",
        fingerprint="pd-1",
        dedup_key="api-5xx",
    )
    (key,) = (await ingest_alerts(env.client, default_policy, [trigger])).keys
    ack = trigger.model_copy(update={"acknowledge": True, "acknowledged_by": "pagerduty: bob"})
    await ingest_alerts(env.client, default_policy, [ack])
    state = await get_incident(env.client, key)
    assert state.severity == "sev2"
    assert state.status == "acknowledged"
    assert state.acknowledged_by == "pagerduty: bob"
    await send_update(env.client, key, "resolve", ResolveRequest(by="test"))


def test_grouping_keeps_payload_order(default_policy: Policy) -> None:
    alerts = [alert(service=s, fingerprint=f"{s}-{i}") for i in range(3) for s in ("a", "b")]
    groups = group_by_incident(default_policy, alerts)
    assert [len(g) for g in groups.values()] == [3, 3]
    assert [a.fingerprint for a in next(iter(groups.values()))] == ["a-0", "a-1", "a-2"]


async def test_a_lost_start_race_is_sent_again_as_a_signal(
    env: WorkflowEnvironment, workers: Settings, default_policy: Policy
) -> None:
    """When two signal-with-starts race and the server answers "already started" to one, nothing of that call
    was applied: it is sent again, and its alert reaches the incident the other one opened."""
    from temporalio.exceptions import WorkflowAlreadyStartedError

    class LoseFirstRace(Interceptor):
        def __init__(self) -> None:
            self.lost = 0

        def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
            outer = self

            class Racing(OutboundInterceptor):
                async def start_workflow(self, input: StartWorkflowInput) -> Any:
                    if outer.lost == 0:
                        outer.lost += 1
                        # Another receiver wins the race: the incident now exists, holding only its alert.
                        (batch,) = input.start_signal_args
                        winner = batch.model_copy(
                            update={"events": [batch.events[0].model_copy(update={"fingerprint": "winner"})]}
                        )
                        await super().start_workflow(dataclasses.replace(input, start_signal_args=[winner]))
                        raise WorkflowAlreadyStartedError(input.id, input.workflow)
                    return await super().start_workflow(input)

            return Racing(next)

    racer = LoseFirstRace()
    config = env.client.config()
    config["interceptors"] = [racer]
    client = Client(**config)
    firing = alert(name="RaceAlert", service="racer", fingerprint="loser")
    (key,) = (await ingest_alerts(client, default_policy, [firing])).keys
    state = await get_incident(env.client, key)
    assert racer.lost == 1
    assert sorted(state.alerts) == ["loser", "winner"]
    assert [e.kind for e in state.timeline].count("opened") == 1
    await send_update(env.client, key, "resolve", ResolveRequest(by="test"))
