"""A real PagerDuty Events v2 client (pdpyras) against the served receiver, a real dev server and a worker:
trigger → acknowledge → resolve closes the incident, as PagerDuty itself does, although an acknowledged
incident holds auto-resolution."""

from __future__ import annotations

import asyncio
import time
import uuid
import warnings
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.support.alerts import ROUTING_KEY
from tests.support.harness import run_workers, settle_postmortem
from tocsin.incident.client import IncidentError, get_incident
from tocsin.incident.contracts import IncidentState, incident_workflow_id
from tocsin.intake.contracts import NormalizedAlert
from tocsin.intake.routing import incident_key
from tocsin.policy.schema import Policy
from tocsin.receiver.config import ReceiverConfig
from tocsin.receiver.serve import bind, build_server, serve_until, temporal_app
from tocsin.settings import Settings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # pdpyras announces its successor; it is the one that takes an http URL
    import pdpyras  # type: ignore[import-untyped]  # no stubs, no py.typed


@pytest.fixture
async def receiver_url(dev_env: WorkflowEnvironment, default_policy: Policy, tmp_path: Path) -> AsyncIterator[str]:
    settings = Settings(home=tmp_path / "home").model_copy(update={"http_port": 0})
    listener = bind(settings, ReceiverConfig())
    stop = asyncio.Event()
    serving = asyncio.create_task(
        serve_until(build_server(temporal_app(dev_env.client, default_policy, ReceiverConfig())), listener, stop)
    )
    async with run_workers(dev_env.client, settings):
        yield listener.url
    stop.set()
    await serving


async def state_when(dev_env: WorkflowEnvironment, key: str, status: str, seconds: float = 30) -> IncidentState:
    """Poll until the incident shows `status` (a real server runs in real time); fail past `seconds`."""
    deadline = time.monotonic() + seconds
    last = "not opened"
    while time.monotonic() < deadline:
        try:
            state = await get_incident(dev_env.client, key)
        except IncidentError:
            state = None
        if state is not None:
            if state.status == status:
                return state
            last = state.status
        await asyncio.sleep(0.2)
    pytest.fail(f"incident {key} is still {last}, not {status}, after {seconds:.0f}s")


async def test_trigger_acknowledge_resolve_resolves(
    dev_env: WorkflowEnvironment, default_policy: Policy, receiver_url: str
) -> None:
    session = pdpyras.EventsAPISession(ROUTING_KEY)
    session.url = receiver_url
    dedup_key = f"db-disk-{uuid.uuid4().hex[:8]}"
    key = incident_key(
        default_policy, NormalizedAlert(source="pagerduty", status="firing", fingerprint="x", dedup_key=dedup_key)
    )

    assert await asyncio.to_thread(session.trigger, "disk full on db-1", "db-1", dedup_key, "critical") == dedup_key
    await state_when(dev_env, key, "triggered")
    assert await asyncio.to_thread(session.acknowledge, dedup_key) == dedup_key
    await state_when(dev_env, key, "acknowledged")
    assert await asyncio.to_thread(session.resolve, dedup_key) == dedup_key
    # The sender retries its resolve at once: accepted again, applied once (the update id is the dedup_key's).
    assert await asyncio.to_thread(session.resolve, dedup_key) == dedup_key

    await state_when(dev_env, key, "resolved")
    handle = dev_env.client.get_workflow_handle(incident_workflow_id(key), result_type=IncidentState)
    final = await asyncio.wait_for(handle.result(), 60)
    assert final.resolved_by == "pagerduty event"
    assert final.resolution_summary == "resolved by a PagerDuty Events v2 resolve event"
    assert [e.kind for e in final.timeline].count("resolved") == 1
    # A resolve for an incident already closed is still a success for its sender.
    assert await asyncio.to_thread(session.resolve, dedup_key) == dedup_key
    assert final.postmortem_workflow_id is not None  # a sev1: its resolution started the post-mortem
    await settle_postmortem(dev_env.client, final.postmortem_workflow_id)
