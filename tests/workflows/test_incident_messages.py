"""Updates, signals and failing channels: what humans and alert sources do to a running incident."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from temporalio import activity
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from activities.delivery import DeliveryActivities
from activities.outbox import Outbox
from tests.support.harness import outbox, run_workers, settle_postmortem, start_incident
from tocsin.incident.client import get_incident, send_update
from tocsin.incident.contracts import AlertBatch, AlertEvent, Delivery, DeliveryReceipt, IncidentState
from tocsin.incident.updates import (
    AcknowledgeRequest,
    AnnotateRequest,
    ResolveRequest,
    SetSeverityRequest,
    UpdateResult,
)
from tocsin.policy.schema import Policy
from tocsin.roster import resolve
from tocsin.settings import Settings


class HeldResolution(DeliveryActivities):
    """Holds the "resolved" notifications until released, so a test can act while the incident is closing."""

    def __init__(self, outbox: Outbox) -> None:
        super().__init__(outbox)
        self.release = asyncio.Event()
        self.holding = asyncio.Event()

    @activity.defn(name="deliver")
    async def deliver(self, delivery: Delivery) -> DeliveryReceipt:
        if "/resolved/" in delivery.idempotency_key:
            self.holding.set()
            await self.release.wait()
        return await super().deliver(delivery)


class DeadPager(DeliveryActivities):
    """PagerDuty answers 400 for every page: a permanent failure, as an adapter would report it."""

    @activity.defn(name="deliver")
    async def deliver(self, delivery: Delivery) -> DeliveryReceipt:
        if delivery.channel == "pagerduty":
            raise ApplicationError(
                "PagerDuty answered 400: invalid routing key", type="PermanentDeliveryError", non_retryable=True
            )
        return await super().deliver(delivery)


async def test_acknowledge_is_rejected_once_resolved_before_anything_is_written(
    env: WorkflowEnvironment, settings: Settings, default_policy: Policy
) -> None:
    delivery = HeldResolution(Outbox(settings.outbox_path))
    async with run_workers(env.client, settings, delivery):
        inp, handle = await start_incident(env.client, default_policy, severity="sev2")
        await send_update(env.client, inp.key, "resolve", ResolveRequest(by="alice"))
        await asyncio.wait_for(delivery.holding.wait(), 10)

        with pytest.raises(WorkflowUpdateFailedError) as failed:
            await handle.execute_update("acknowledge", AcknowledgeRequest(by="late"), result_type=UpdateResult)
        assert "is resolved" in str(failed.value.cause)
        # A rejected update is never accepted into history.
        history = await handle.fetch_history()
        accepted = [e for e in history.events if e.HasField("workflow_execution_update_accepted_event_attributes")]
        names = [e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name for e in accepted]
        assert names == ["resolve"]

        delivery.release.set()
        final = IncidentState.model_validate(await handle.result())
        assert final.acknowledged_by == "alice"
        assert [e.kind for e in final.timeline].count("acknowledged") == 0
        await settle_postmortem(env.client, f"postmortem-{inp.key}")


async def test_a_repeated_request_id_is_applied_once(
    env: WorkflowEnvironment, workers: Settings, default_policy: Policy
) -> None:
    inp, handle = await start_incident(env.client, default_policy, severity="sev3")
    note = AnnotateRequest(by="bob", text="DB failover started", request_id="req-1")
    first = await handle.execute_update("annotate", note, result_type=UpdateResult)
    again = await handle.execute_update("annotate", note, id="another-update-id", result_type=UpdateResult)
    assert first.message == "note added"
    assert "repeated request" in again.message
    state = await get_incident(env.client, inp.key)
    assert [e.text for e in state.timeline if e.kind == "note"] == ["DB failover started"]
    # A bad severity is refused by the validator with the policy's own list.
    with pytest.raises(WorkflowUpdateFailedError) as failed:
        await handle.execute_update("set_severity", SetSeverityRequest(by="bob", severity="sev9"))
    assert "unknown severity 'sev9'" in str(failed.value.cause)
    await send_update(env.client, inp.key, "resolve", ResolveRequest(by="bob"))
    await handle.result()


async def test_alerts_coalesce_into_one_record_per_fingerprint(
    env: WorkflowEnvironment, workers: Settings, default_policy: Policy
) -> None:
    inp, handle = await start_incident(env.client, default_policy, severity="sev3")
    firing = AlertEvent(fingerprint="abc", status="firing", labels={"service": "checkout"}, summary="5xx > 10%")
    for _ in range(25):
        await handle.signal("alerts", AlertBatch(events=[firing]))
    await handle.signal("alerts", AlertBatch(events=[firing.model_copy(update={"status": "resolved"})]))
    await handle.signal(
        "alerts", AlertBatch(events=[AlertEvent(fingerprint="def", status="firing", summary="p95 > 5s")])
    )
    await env.sleep(timedelta(seconds=1))
    state = await get_incident(env.client, inp.key)
    assert state.alerts["abc"].count == 26
    assert state.alerts["abc"].status == "resolved"
    assert state.alerts["def"].count == 1
    alert_entries = [(e.kind, e.text) for e in state.timeline if e.kind.startswith("alert_")]
    assert alert_entries == [
        ("alert_firing", "5xx > 10%"),
        ("alert_resolved", "5xx > 10%"),
        ("alert_firing", "p95 > 5s"),
    ]
    await send_update(env.client, inp.key, "resolve", ResolveRequest(by="bob"))
    await handle.result()


async def test_a_dead_channel_is_recorded_and_the_chain_moves_on_on_time(
    env: WorkflowEnvironment, settings: Settings, default_policy: Policy
) -> None:
    async with run_workers(env.client, settings, DeadPager(Outbox(settings.outbox_path))):
        inp, handle = await start_incident(env.client, default_policy, severity="sev1")
        await env.sleep(timedelta(minutes=16))
        state = await get_incident(env.client, inp.key)
        failed = [e.text for e in state.timeline if e.kind == "delivery_failed"]
        # Three pages to whoever is on call, and the emergency-response action to the team (on-call included),
        # went to PagerDuty; each failure is on the timeline.
        on_call = resolve(default_policy.roster, "primary_oncall", state.opened_at).people[0].pagerduty
        assert sum(t.startswith(f"pagerduty → {on_call}:") for t in failed) == 3 + 1
        assert sum(e.kind == "page" and e.text.startswith("level 1:") for e in state.timeline) == 3
        assert all("invalid routing key" in t for t in failed)
        phone = [e for e in outbox(settings, inp.key) if e["channel"] == "phone"]
        assert len(phone) == 1
        assert state.escalation_level == 2
        await send_update(env.client, inp.key, "resolve", ResolveRequest(by="x"))
        await handle.result()
        await settle_postmortem(env.client, f"postmortem-{inp.key}")
