"""Task-queue priority (tocsin/policy/priority.py): the pure keys, the policy's override, and what an incident
actually schedules, read from its history on the time-skipping server."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, ScheduleActionStartWorkflow
from temporalio.testing import WorkflowEnvironment

from tests.support.harness import settle_postmortem, start_incident
from tocsin.detection.schedule import detector_schedule
from tocsin.incident.client import send_update
from tocsin.incident.contracts import INCIDENT_TASK_QUEUE, PAGING_TASK_QUEUE, IncidentState
from tocsin.incident.updates import ResolveRequest, SetSeverityRequest
from tocsin.policy.priority import (
    BACKGROUND,
    DEFAULT,
    POSTMORTEM,
    STORM_GUARD,
    background,
    delivery_priority,
    incident_priority,
)
from tocsin.policy.schema import Policy
from tocsin.settings import Settings
from tocsin.storm.contracts import STORM_GUARD_WORKFLOW_ID
from worker.main import PAGING_SLOTS, build_workers


def with_priorities(policy: Policy, **priorities: int | None) -> Policy:
    data = policy.model_dump(mode="json")
    for severity, priority in priorities.items():
        data["incident_classification"]["severity_levels"][severity]["priority"] = priority
    return Policy.model_validate(data)


# --- the pure keys -------------------------------------------------------------------------------------------


def test_incidents_go_by_severity_and_unranked_ones_take_temporals_default(default_policy: Policy) -> None:
    assert [incident_priority(default_policy, s) for s in ("sev1", "sev2", "sev3", "sev4")] == [1, 2, 3, 3]
    assert incident_priority(default_policy, "not-in-the-policy") == DEFAULT


def test_a_storm_incident_never_goes_ahead_of_an_incident_paging_on_its_own(default_policy: Policy) -> None:
    assert incident_priority(default_policy, "sev1", storm=True) == BACKGROUND


def test_the_policy_can_rank_a_severity_itself(default_policy: Policy) -> None:
    policy = with_priorities(default_policy, sev3=1, sev1=2)
    assert [incident_priority(policy, s) for s in ("sev1", "sev2", "sev3")] == [2, 2, 1]


@pytest.mark.parametrize("bad", [0, 6, -1])
def test_a_priority_outside_temporals_1_to_5_is_refused_at_load(default_policy: Policy, bad: int) -> None:
    with pytest.raises(ValidationError, match="priority"):
        with_priorities(default_policy, sev2=bad)


def test_bookkeeping_goes_after_every_page_and_never_ahead_of_its_incident() -> None:
    assert [background(p) for p in (1, 2, 3, 4, 5)] == [4, 4, 4, 4, 5]
    assert delivery_priority(1, "pagerduty") == 1
    assert delivery_priority(2, "email") == 2
    assert delivery_priority(1, "statuspage") == BACKGROUND
    assert delivery_priority(1, "github") == BACKGROUND
    assert delivery_priority(1, "slack", follow_up=True) == BACKGROUND


def test_detection_ticks_run_in_the_background(default_policy: Policy) -> None:
    action = detector_schedule(default_policy).action
    assert isinstance(action, ScheduleActionStartWorkflow)
    assert action.priority.priority_key == BACKGROUND


async def test_pages_have_a_worker_of_their_own(env: WorkflowEnvironment, settings: Settings) -> None:
    workers = {w.task_queue: w.config() for w in build_workers(env.client, settings, postmortem_env={})}
    paging = workers[PAGING_TASK_QUEUE]
    assert [a.__name__ for a in paging.get("activities", [])] == ["deliver"]
    assert not paging.get("workflows")
    assert paging.get("max_concurrent_activities") == PAGING_SLOTS


# --- what an incident schedules -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scheduled:
    activity: str
    queue: str
    priority: int
    step: str  # a delivery's step (`page/0/1`), from its idempotency key; "" for other activities
    channel: str


async def scheduled(client: Client, workflow_id: str) -> tuple[int, list[Scheduled], dict[str, int]]:
    """The run's own priority key, each activity it scheduled, and each child it started (id → key)."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    own, activities, children = 0, [], {}
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            own = event.workflow_execution_started_event_attributes.priority.priority_key
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            a = event.activity_task_scheduled_event_attributes
            arg: dict[str, Any] = json.loads(a.input.payloads[0].data) if a.input.payloads else {}
            step = str(arg.get("idempotency_key", "")).split("/", 2)[-1] if "idempotency_key" in arg else ""
            activities.append(
                Scheduled(
                    a.activity_type.name, a.task_queue.name, a.priority.priority_key, step, arg.get("channel", "")
                )
            )
        elif event.event_type == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
            c = event.start_child_workflow_execution_initiated_event_attributes
            children[c.workflow_id] = c.priority.priority_key
    return own, activities, children


async def test_a_sev1_pages_on_the_paging_queue_first_and_does_its_bookkeeping_after(
    env: WorkflowEnvironment, workers: Settings, default_policy: Policy
) -> None:
    inp, handle = await start_incident(env.client, default_policy, severity="sev1")
    await env.sleep(timedelta(minutes=6))
    await send_update(env.client, inp.key, "resolve", ResolveRequest(by="alice"))
    final = IncidentState.model_validate(await handle.result())
    assert final.postmortem_workflow_id
    await settle_postmortem(env.client, final.postmortem_workflow_id)

    own, activities, children = await scheduled(env.client, handle.id)
    assert own == 1
    deliveries = [a for a in activities if a.activity == "deliver"]
    assert {a.queue for a in deliveries} == {PAGING_TASK_QUEUE}
    pages = [a for a in deliveries if a.step.startswith("page/")]
    assert len(pages) == 2 and {a.priority for a in pages} == {1}
    told = [a for a in deliveries if a.step.startswith(("resolved/", "action/notify_executives"))]
    assert told and {a.priority for a in told} == {1}
    # The status page and the channels the incident follows are kept in step after every page.
    bookkeeping = [a for a in deliveries if a.channel == "statuspage" or a.step.startswith("sync/")]
    assert bookkeeping and {a.priority for a in bookkeeping} == {BACKGROUND}
    others = {(a.activity, a.queue, a.priority) for a in activities if a.activity != "deliver"}
    # The storm guard's answer comes before the first page: asked at the incident's own priority.
    assert others == {("storm_admit", INCIDENT_TASK_QUEUE, 1), ("find_previous_incident", INCIDENT_TASK_QUEUE, 4)}
    assert children == {final.postmortem_workflow_id: POSTMORTEM}

    guard, _, _ = await scheduled(env.client, STORM_GUARD_WORKFLOW_ID)
    assert guard == STORM_GUARD


async def test_pages_follow_the_severity_as_it_changes(
    env: WorkflowEnvironment, workers: Settings, default_policy: Policy
) -> None:
    inp, handle = await start_incident(env.client, default_policy, severity="sev3")
    await env.sleep(timedelta(minutes=1))
    await send_update(env.client, inp.key, "set_severity", SetSeverityRequest(by="carol", severity="sev1"))
    await env.sleep(timedelta(minutes=1))

    own, activities, _ = await scheduled(env.client, handle.id)
    # The run keeps the key it started with; what it schedules from now on goes at the new severity's.
    assert own == DEFAULT
    deliveries = [a for a in activities if a.activity == "deliver"]
    before = [a for a in deliveries if a.step.startswith("action/notify_team")]
    after = [a for a in deliveries if a.step.startswith("page/")]
    assert before and {a.priority for a in before} == {DEFAULT}
    assert after and {a.priority for a in after} == {1}
    await handle.terminate("test over")
