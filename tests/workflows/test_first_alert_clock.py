"""The clock starts at the first alert (#15): a worker that starts late does not shorten the response times, and
a note that lands in the workflow's first task still comes after the opening."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta

from temporalio.testing import WorkflowEnvironment

from tests.support.alerts import alert
from tests.support.harness import run_workers, unique_key
from tocsin.cli.commands import _describe
from tocsin.incident.client import get_incident, open_incident, send_update
from tocsin.incident.contracts import IncidentState, incident_workflow_id
from tocsin.incident.updates import AcknowledgeRequest, AnnotateRequest, UpdateResult
from tocsin.intake.ingest import ingest_alerts
from tocsin.policy.schema import Policy
from tocsin.policy.triage import TriggerRequest, plan_incident
from tocsin.postmortem.impact import compute_impact, time_to_first_page
from tocsin.settings import Settings

# How long the incident waits for a worker (the busy worker of the walk-through), in wall time: the
# time-skipping server does not move its clock while a workflow task waits for a worker (env.sleep times out).
WAIT = timedelta(seconds=3)


async def _until_paged(env: WorkflowEnvironment, key: str, timeout: float = 20.0) -> IncidentState:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        state = await get_incident(env.client, key)
        if state.first_paged_at is not None:
            return state
        assert asyncio.get_running_loop().time() < deadline, f"{key} was never paged: {state.timeline}"
        await asyncio.sleep(0.05)


async def test_response_times_are_measured_from_the_first_alert_when_the_worker_starts_late(
    env: WorkflowEnvironment, settings: Settings, default_policy: Policy
) -> None:
    # The CLI asked at T0.
    t0 = datetime.now(UTC)
    inp = plan_incident(default_policy, TriggerRequest(service="ledger", severity="sev1", key=unique_key("ledger")), t0)
    assert inp.first_alert_at == t0
    assert await open_incident(env.client, inp)
    # Nobody runs the workflow's first task for a while.
    await asyncio.sleep(WAIT.total_seconds())
    async with run_workers(env.client, settings):
        paged = await _until_paged(env, inp.key)
        await send_update(env.client, inp.key, "acknowledge", AcknowledgeRequest(by="alice"))
        state = await get_incident(env.client, inp.key)
        await env.client.get_workflow_handle(incident_workflow_id(inp.key)).terminate("test over")

    assert state.first_alert_at == t0
    assert state.opened_at - t0 >= WAIT
    assert paged.first_paged_at is not None and paged.first_paged_at - t0 >= WAIT
    assert state.first_paged_at == paged.first_paged_at  # the first page, not a later one
    opened = state.timeline[0]
    assert opened.kind == "opened"
    waited = re.search(r"opened (\d+)s after the first alert", opened.text)
    assert waited is not None and int(waited.group(1)) >= WAIT.seconds, opened.text

    impact = compute_impact(state, [], default_policy.postmortem)
    assert state.acknowledged_at is not None
    assert impact.time_to_acknowledge == state.acknowledged_at - t0
    assert impact.time_to_acknowledge is not None and impact.time_to_acknowledge >= WAIT
    first_page = time_to_first_page(state)
    assert first_page is not None and WAIT <= first_page <= impact.time_to_acknowledge

    # `tocsin incidents show` says when the alert came and when the first page went out.
    shown = _describe(state)
    assert "first alert:" in shown and "before it opened" in shown
    assert "first page:" in shown and "after the first alert" in shown


async def test_a_note_that_lands_in_the_first_workflow_task_comes_after_the_opening(
    env: WorkflowEnvironment, settings: Settings, default_policy: Policy
) -> None:
    # The receiver's path: signal-with-start, while no worker runs.
    received = datetime.now(UTC)
    (key,) = (await ingest_alerts(env.client, default_policy, [alert(name="LedgerErrors", service="ledger")])).keys
    handle = env.client.get_workflow_handle(incident_workflow_id(key))
    request = AnnotateRequest(by="alice", text="error rate 40% on ledger-writer since deploy 2041")
    note = asyncio.create_task(handle.execute_update("annotate", request, result_type=UpdateResult))
    # Long enough for the update to reach the server while the first workflow task still waits for a worker.
    await asyncio.sleep(1.0)
    assert not note.done()
    async with run_workers(env.client, settings):
        await asyncio.wait_for(note, 20)
        state = await get_incident(env.client, key)
        history = await handle.fetch_history()
        await handle.terminate("test over")

    # The update raced the first task and won: it was accepted in the very first workflow task.
    tasks_before = 0
    for event in history.events:
        if event.HasField("workflow_task_completed_event_attributes"):
            tasks_before += 1
        if event.HasField("workflow_execution_update_accepted_event_attributes"):
            break
    assert tasks_before == 1
    kinds = [e.kind for e in state.timeline]
    assert kinds[:2] == ["opened", "triaged"], kinds
    assert "note" in kinds[2:], kinds
    # The receiver's intake time is the incident's first alert.
    assert state.first_alert_at is not None and received <= state.first_alert_at <= state.opened_at


async def test_a_first_alert_stamped_ahead_of_the_server_clock_is_capped_at_the_opening(
    env: WorkflowEnvironment, settings: Settings, default_policy: Policy
) -> None:
    # A receiver whose clock runs an hour fast: the incident cannot have opened before its first alert.
    ahead = datetime.now(UTC) + timedelta(hours=1)
    inp = plan_incident(
        default_policy, TriggerRequest(service="ledger", severity="sev3", key=unique_key("ledger")), ahead
    )
    async with run_workers(env.client, settings):
        assert await open_incident(env.client, inp)
        state = await get_incident(env.client, inp.key)
        await env.client.get_workflow_handle(incident_workflow_id(inp.key)).terminate("test over")
    assert state.first_alert_at == state.opened_at
    assert "after the first alert" not in state.timeline[0].text
