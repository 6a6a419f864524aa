"""SIGKILL the worker (`tocsin worker`) while a side effect is in flight: a page, a runbook's scale write, a
post-mortem's publication. The vendor applies the request and keeps its answer back; the worker dies without
hearing it; a new worker retries. The vendor must see the effect once, and the incidents must go on paging on
the policy's clock.

How long recovery takes is Temporal's, and each case says which timeout it waits for: the server retries a
dead worker's activity only when the activity's start-to-close timeout runs out; and a workflow task that falls
due within seconds of the death goes to the dead worker's sticky queue, where it waits out the SDK's
`sticky_queue_schedule_to_start_timeout` (10 s) before any worker may take it.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.service import RPCError

from tests.integration.chaos.checks import (
    ON_TIME,
    Figure,
    assert_no_duplicate_effects,
    chain_done,
    check_incident,
    delivered_pages,
    page_schedule,
    resumed_at,
)
from tests.integration.chaos.conftest import Stack, until
from tests.integration.chaos.vendors import Hold, step_of
from tocsin.incident.client import send_update
from tocsin.incident.updates import ResolveRequest
from tocsin.postmortem.state import ApproveRequest, PostMortemState
from tocsin.runbook.contracts import RunbookResult, runbook_workflow_id
from worker.main import STICKY_TIMEOUT as WORKER_STICKY_TIMEOUT
from workflows.postmortem.pipeline import PUBLISH_HEARTBEAT

# The incidents queue's `sticky_queue_schedule_to_start_timeout` (worker/main.py), in seconds.
STICKY_TIMEOUT = WORKER_STICKY_TIMEOUT.total_seconds()
SERVICE_DOWN = {"alertname": "ServiceAvailabilityLow", "environment": "prod"}


def resume_within(activity_timeout: timedelta) -> float:
    """The longest a sev1 may stay silent after its worker is SIGKILLed with an activity in flight: the
    activity's timeout, the first retry's backoff (1 s for deliveries, 2 s for runbook steps), the sticky
    queue's timeout, and ON_TIME for the delivery itself."""
    return activity_timeout.total_seconds() + 2.0 + STICKY_TIMEOUT + ON_TIME


async def kill_during_page(stack: Stack, hold: Hold, step: str) -> tuple[str, float, float, float]:
    """Open a sev1; when the page `step` reaches its vendor, which keeps its answer, SIGKILL the worker and start
    a new one; wait for the chain's last step. Returns the incident's key, when it opened, when the worker was
    killed and when the incident acted again (epoch seconds)."""
    worker = stack.tocsin("worker")
    await stack.start(worker)
    hold.arm(step)
    key = await stack.open_incident("payments")
    opened = (await stack.incident(key)).opened_at.timestamp()
    await until(hold.reached.is_set, 30, f"{step} to reach its vendor")
    killed = worker.kill()
    await stack.start(worker)
    await until(lambda: chain_done(stack.vendors.ledger, stack.policy, key), 90, "every timed step to arrive")
    await asyncio.sleep(0.5)  # a request still on its way arrives before the counting
    return key, opened, killed, resumed_at(stack.vendors.ledger, key, killed)


# Not chaos_quick: at about 20 s (the dead attempt's timeout and the sticky queue's are most of it) it would take
# `make test` past its five minutes; tests/integration/test_durability.py keeps a worker SIGKILLed mid-delivery
# in `make test`.
@pytest.mark.chaos
async def test_worker_killed_while_a_page_is_in_flight(stack: Stack, figures: list[Figure]) -> None:
    ledger, pagerduty, policy = stack.vendors.ledger, stack.vendors.pagerduty, stack.policy
    # The second PagerDuty page reaches PagerDuty, which keeps its answer: the kill lands while it is in flight.
    key, opened, killed, resumed = await kill_during_page(stack, pagerduty.hold, "/page/0/2")

    # The page in flight was sent again by the new worker (its answer never came), with the same dedup_key
    # and delivery: PagerDuty kept one alert and applied it once.
    retried = ledger.for_step("page/0/2", f"incident-{key}")
    assert [e.applied for e in retried] == [True, False], retried
    assert pagerduty.opened == 1 and list(pagerduty.alerts) == [key]
    # 0 duplicate external effects: every other request arrived once (calls, texts, Slack posts, the war room,
    # the status page).
    assert_no_duplicate_effects(ledger)
    assert {step_of(k): n for (_, k), n in ledger.requests_per_key().items() if n > 1} == {"page/0/2": 2}
    assert [e.what for e in ledger.effects("slack") if e.what.startswith("conversations.create inc-")] == [
        f"conversations.create inc-{key}"
    ]
    assert len(stack.vendors.statuspage.incidents) == 1
    # 0 lost pages, and on schedule: before the kill, after recovery, and what fell due between on recovery.
    assert resumed - killed <= resume_within(policy.lifecycle.delivery_timeout)
    figures.append(
        Figure.one_kill("worker SIGKILL during a page (PagerDuty)", ledger, policy, key, opened, killed, resumed)
    )


@pytest.mark.chaos
async def test_worker_killed_while_a_call_is_in_flight_calls_twice(stack: Stack, figures: list[Figure]) -> None:
    """Twilio's REST API takes no idempotency key (docs/channels.md): a call whose answer was lost is placed
    again by the retry. Pinned, so docs/channels.md's idempotency column (phone and SMS at least once) is a
    measured fact."""
    ledger, policy = stack.vendors.ledger, stack.policy
    key, opened, killed, resumed = await kill_during_page(stack, stack.vendors.twilio.hold, "/page/1/1")

    retried = ledger.for_step("page/1/1", f"incident-{key}")
    assert [(e.channel, e.applied) for e in retried] == [("phone", True), ("phone", True)], retried
    doubled = {f"{channel} {step_of(k)}": n for (channel, k), n in ledger.duplicated().items()}
    assert doubled == {"phone page/1/1": 1}, "exactly the call in flight was placed twice, nothing else"
    assert {step_of(k): n for (_, k), n in ledger.requests_per_key().items() if n > 1} == {"page/1/1": 2}
    assert resumed - killed <= resume_within(policy.lifecycle.delivery_timeout)
    figures.append(
        Figure.one_kill(
            "worker SIGKILL during a phone call (Twilio: no idempotency key)",
            ledger,
            policy,
            key,
            opened,
            killed,
            resumed,
        )
    )


@pytest.mark.chaos
async def test_worker_killed_while_a_runbook_scales_the_service(stack: Stack, figures: list[Figure]) -> None:
    ledger, kubernetes, policy = stack.vendors.ledger, stack.vendors.kubernetes, stack.policy
    worker = stack.tocsin("worker")
    await stack.start(worker)
    # The runbook's scale write reaches the cluster (3 -> 6 replicas) and its answer is kept back.
    kubernetes.hold.arm("scale")
    key = await stack.open_incident("checkout", labels=SERVICE_DOWN)
    opened = (await stack.incident(key)).opened_at.timestamp()
    await until(kubernetes.hold.reached.is_set, 30, "the runbook's scale write to reach the cluster")
    killed = worker.kill()
    await stack.start(worker)

    runbook = stack.client.get_workflow_handle(runbook_workflow_id(key, 1))
    result = RunbookResult.model_validate(await asyncio.wait_for(runbook.result(), 90))
    await until(lambda: chain_done(ledger, policy, key), 90, "every timed step to reach its vendor")
    await asyncio.sleep(0.5)
    resumed = resumed_at(ledger, key, killed)

    assert result.outcome == "succeeded", result
    assert [(s.step, s.outcome) for s in result.steps] == [
        ("scale_out", "done"),
        ("restart", "done"),
        ("tell_responders", "done"),
    ]
    # The scale write happened once: the retry's write was refused (409, the object had moved on) and a fresh
    # read found the count it wanted, so it was not compounded (current * 2 = 6, never 12).
    writes = [(e.what, e.applied) for e in ledger.effects("kubernetes")]
    assert writes == [
        ("scale 3 -> 6 (200)", True),
        ("scale 6 -> 6 (409)", False),
        ("PATCH deployment (200)", True),
    ], writes
    assert kubernetes.replicas("checkout") == 6
    [told] = [e for e in ledger.effects("slack") if step_of(e.key) == "tell_responders/#incidents"]
    assert told.applied
    assert_no_duplicate_effects(ledger)
    assert {step_of(k): n for (_, k), n in ledger.requests_per_key().items() if n > 1} == {}
    # The incident was cached on the dead worker too: its pages wait out the sticky queue, then catch up.
    assert resumed - killed <= resume_within(timedelta(seconds=8))
    figures.append(
        Figure.one_kill("worker SIGKILL during a runbook's scale write", ledger, policy, key, opened, killed, resumed)
    )


# A dead worker's publication is retried once its heartbeat timeout (workflows/postmortem/pipeline.py) runs out.
PUBLISH_TIMEOUT = PUBLISH_HEARTBEAT.total_seconds()


@pytest.mark.chaos
async def test_worker_killed_while_a_postmortem_is_published(stack: Stack, figures: list[Figure]) -> None:
    ledger, github, policy = stack.vendors.ledger, stack.vendors.github, stack.policy
    # A deploy minutes before the outage: the built-in analyzer names it the likely cause, so the report has
    # action items (deployment validation, canary rollouts) for publication to file as issues.
    deployed = datetime.now(UTC) - timedelta(minutes=5)
    stack.vendors.changes.deployment(1, deployed, ("success", deployed + timedelta(minutes=1)))
    worker = stack.tocsin("worker")
    await stack.start(worker)
    first = await stack.open_incident("payments")
    await until(lambda: bool(ledger.first_at("page/0/1", f"incident-{first}")), 30, "the first page")
    await send_update(stack.client, first, "resolve", ResolveRequest(by="alice", summary="rolled back"))
    assert delivered_pages(ledger, policy, first) == ["page/0/1"]  # resolved before its second page
    postmortem = stack.client.get_workflow_handle(f"postmortem-{first}")

    async def phase() -> str:
        try:
            state: PostMortemState = await postmortem.query("status", result_type=PostMortemState)
        except RPCError:  # not started yet
            return ""
        return state.phase

    deadline = asyncio.get_running_loop().time() + 120
    while await phase() != "in_review":
        assert asyncio.get_running_loop().time() < deadline, "the post-mortem never reached review"
        await asyncio.sleep(0.5)
    # A second incident escalates all along: the kill must not stall its paging.
    key = await stack.open_incident("search")
    opened = (await stack.incident(key)).opened_at.timestamp()
    # Publication commits the report, then files the action items; the first issue is filed and its answer
    # kept back, so the worker dies mid-publication with the report committed and one issue open.
    github.hold.arm("issue")
    await postmortem.execute_update("approve", ApproveRequest(by="erin"))
    await until(github.hold.reached.is_set, 60, "publication to file its first issue")
    killed = worker.kill()
    await stack.start(worker)

    await until(lambda: chain_done(ledger, policy, key), 90, "every timed step of the second incident")
    deadline = asyncio.get_running_loop().time() + PUBLISH_TIMEOUT + 60
    while await phase() not in ("following_up", "done"):
        assert asyncio.get_running_loop().time() < deadline, "the post-mortem was never published"
        await asyncio.sleep(0.5)
    await asyncio.sleep(1.0)
    state: PostMortemState = await postmortem.query("status", result_type=PostMortemState)
    republished = min(e.at for e in ledger.effects("github") if e.at > killed)
    resumed = resumed_at(ledger, key, killed)

    # One report file: created once, then updated once with the issues' links; the retry found the bytes it
    # would have written already there and committed nothing. One issue per action item: the retry found the
    # issue the dead worker had filed by its marker.
    repo = github.issues["acme/ops"]
    commits = [e.what for e in ledger.effects("github") if e.what.startswith("commit")]
    path = f"postmortems/{first}.md"
    assert commits == [f"commit {path} (201)", f"commit {path} (200)"], commits
    assert len(github.commits) == 2
    titles = [i["title"] for i in repo]
    assert titles and len(titles) == len(set(titles)) == len(state.items), titles
    assert sorted(i.issue_number for i in state.items if i.issue_number) == [i["number"] for i in repo]
    assert state.report_url.endswith(path)
    assert_no_duplicate_effects(ledger)
    assert {step_of(k): n for (_, k), n in ledger.requests_per_key().items() if n > 1} == {}
    # The second incident paged on schedule through the kill (its own recovery: the sticky queue's timeout).
    assert resumed - killed <= STICKY_TIMEOUT + 2 * ON_TIME
    found = check_incident(ledger, policy, key, opened, outage=(killed, resumed))
    figures.append(
        Figure.of(
            "worker SIGKILL during post-mortem publication",
            ledger,
            found,
            kills=1,
            expected=len(page_schedule(policy)) + 1,
            delivered=len(delivered_pages(ledger, policy, key)) + len(delivered_pages(ledger, policy, first)),
            recovery=republished - killed,
        )
    )
