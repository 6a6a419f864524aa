"""Under a storm, through the receiver and a real (time-skipping) Temporal: one incident key taking 10,000
per-pod alerts stays bounded and keeps paging; a burst of 500 new incidents pages through one storm incident."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from tests.support.harness import outbox
from tests.workflows.test_incident_lifecycle import at_minutes, steps
from tocsin.incident.client import IncidentError, get_incident, send_update
from tocsin.incident.contracts import IncidentState, incident_workflow_id
from tocsin.incident.updates import AcknowledgeRequest, EscalateRequest
from tocsin.policy.schema import Policy
from tocsin.receiver.config import ReceiverConfig
from tocsin.receiver.serve import temporal_app
from tocsin.settings import Settings
from tocsin.storm.contracts import STORM_GUARD_WORKFLOW_ID, StormGuardState

SUMMARY = "x" * 480


def receiver(env: WorkflowEnvironment, policy: Policy) -> httpx.AsyncClient:
    app = temporal_app(env.client, policy, ReceiverConfig())
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost", timeout=120)


def pod_alert(post: int, pod: int) -> dict[str, Any]:
    return {
        "labels": {
            "alertname": "PodCrashLooping",
            "service": "ledger",
            "environment": "prod",
            "severity": "critical",
            "pod": f"ledger-{post}-{pod}",
        },
        "summary": f"{SUMMARY} pod {post}-{pod}",
    }


async def runs_of(client: Client, workflow_id: str) -> list[list[tuple[EventType.ValueType, str]]]:
    """Every run's event types (with a failed workflow task's cause), newest first, following continue-as-new
    back to the first run."""
    out = []
    run_id: str | None = None
    while True:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        out.append([(e.event_type, e.workflow_task_failed_event_attributes.failure.message) for e in history.events])
        previous = history.events[0].workflow_execution_started_event_attributes.continued_execution_run_id
        if not previous:
            return out
        run_id = previous


async def test_ten_thousand_alerts_into_one_key_stay_bounded_and_keep_paging(
    env: WorkflowEnvironment, workers: Settings, default_policy: Policy
) -> None:
    async with receiver(env, default_policy) as http:
        answers = [
            await http.post("/api/v1/alerts", json=[pod_alert(post, pod) for pod in range(1000)]) for post in range(10)
        ]
    assert [a.status_code for a in answers] == [202] * 10, answers[-1].text
    (key,) = {k for a in answers for k in a.json()["keys"]}
    await env.sleep(timedelta(seconds=30))
    handle = env.client.get_workflow_handle(incident_workflow_id(key))
    raw = await handle.query("status")  # as the CLI and the Web UI get it: one payload
    assert len(IncidentState.model_validate(raw).model_dump_json()) < 1_000_000
    state = await get_incident(env.client, key)
    assert state.alert_count == 10_000
    assert state.alert_events == {"firing": 10_000}
    assert len(state.alerts) == default_policy.limits.alerts_per_incident
    assert len(state.timeline) <= default_policy.limits.timeline_entries
    assert any("beyond the 1000 alerts tracked" in e.text for e in state.timeline)

    # Paging keeps its schedule (pagerduty at 0, 5 and 10 minutes), then a person acts and is heard.
    await env.sleep(timedelta(minutes=11))
    rows = at_minutes(outbox(workers, key), state.opened_at)
    assert steps(rows, "page/") == [(0.0, "pagerduty"), (5.0, "pagerduty"), (10.0, "pagerduty")]
    acked = await send_update(env.client, key, "acknowledge", AcknowledgeRequest(by="alice"))
    assert acked.status == "acknowledged"
    escalated = await send_update(env.client, key, "escalate", EscalateRequest(by="alice", reason="storm"))
    assert "escalation to level 2" in escalated.message
    await env.sleep(timedelta(seconds=5))
    manual = steps(at_minutes(outbox(workers, key), state.opened_at), "page/1/")
    assert [channel for _, channel in manual] == ["phone"], "the escalation paged level 2 at once"

    runs = await runs_of(env.client, incident_workflow_id(key))
    assert len(runs) >= 2, "the byte-measured continue-as-new rolled the history over"
    failed = [why for run in runs for t, why in run if t == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED]
    assert failed == [], "no workflow task ever failed"


def sev1_alert(n: int) -> dict[str, Any]:
    labels = {"alertname": "ZoneDown", "service": f"svc{n:03d}", "environment": "prod", "severity": "critical"}
    return {"labels": labels, "summary": f"svc{n:03d} is down"}


async def test_a_burst_of_500_new_incidents_pages_through_one_storm_incident(
    env: WorkflowEnvironment, workers: Settings, default_policy: Policy
) -> None:
    threshold = default_policy.intake.storm.threshold
    async with receiver(env, default_policy) as http:
        answer = await http.post("/api/v1/alerts", json=[sev1_alert(n) for n in range(500)])
    assert answer.status_code == 202, answer.text
    keys = set(answer.json()["keys"])
    assert len(keys) == 500
    # In real time (this server's clock moves only when a test sleeps on it): every incident asks the guard
    # and waits a few seconds for its answer, which a clock skipped ahead would cut short.
    guard = env.client.get_workflow_handle(STORM_GUARD_WORKFLOW_ID)
    listed = 0
    for _ in range(900):
        with contextlib.suppress(RPCError, IncidentError):  # the guard or the storm incident is not there yet
            guarded = await guard.query("storms", result_type=StormGuardState)
            if guarded.storm is not None:
                joined = await get_incident(env.client, guarded.storm.key)
                listed = joined.storm.count if joined.storm else 0
        if listed == 500:
            break
        await asyncio.sleep(0.1)
    await env.sleep(timedelta(seconds=20))

    # All at once: 500 queries one after another cost this test ten seconds.
    ordered = sorted(keys)
    states = dict(zip(ordered, await asyncio.gather(*(get_incident(env.client, k) for k in ordered)), strict=True))
    held = {k for k, s in states.items() if s.paging_held}
    assert len(keys - held) == threshold, "the first `threshold` page on their own; every later one is held"
    (storm_key,) = {s.storm_key for s in states.values() if s.storm_key}
    storm = await get_incident(env.client, storm_key)
    assert storm.storm is not None
    assert {m.key for m in storm.storm.members} == keys, "the storm incident names all 500"
    assert storm.severity == "sev1", "a burst of sev1s pages as a sev1"

    lines = [*outbox(workers, storm_key), *(line for k in keys for line in outbox(workers, k))]
    paging = {line["incident"] for line in lines}
    assert storm_key in paging
    assert len(paging) <= threshold + 1
    assert all(outbox(workers, k) == [] for k in held), "a held incident sends nothing of its own"

    # Once the burst is over (no new incident for the window), the storm incident says what happened.
    await env.sleep(default_policy.intake.storm.window + timedelta(seconds=5))
    storm = await get_incident(env.client, storm_key)
    summary = [e.text for e in storm.timeline if e.text.startswith("storm over")]
    assert summary and "500 new incidents" in summary[0] and f"{threshold} paged on their own" in summary[0]
