"""Record the golden histories replayed in CI (`make histories`).

Each scenario is a real run on the time-skipping test server with the real worker. Re-record only for a
deliberate change that is gated by `workflow.patched()`, and keep the old files: they are what proves that
incidents already running in production still replay after the change.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from tests.support.harness import run_workers, venv_binary
from tests.support.paths import ROOT
from tests.support.runbook_stack import running_stack
from tocsin import search_attributes as sa
from tocsin.heartbeat.contracts import heartbeat_incident_key, heartbeat_workflow_id
from tocsin.incident.client import get_incident, open_incident, send_update
from tocsin.incident.contracts import (
    POSTMORTEM_TASK_QUEUE,
    AlertBatch,
    AlertEvent,
    IncidentState,
    PostMortemInput,
    TimelineEntry,
)
from tocsin.incident.updates import (
    AcknowledgeRequest,
    AnnotateRequest,
    EscalateRequest,
    MitigateRequest,
    ResolveRequest,
    SetSeverityRequest,
    SnoozeRequest,
    TakeRequest,
)
from tocsin.maintenance.client import current_windows, end_window, start_window
from tocsin.maintenance.contracts import MAINTENANCE_WORKFLOW_ID, EndWindow, StartWindow, WindowNotice
from tocsin.policy.heartbeats import Heartbeat
from tocsin.policy.loader import load_policy
from tocsin.policy.schema import Policy
from tocsin.policy.triage import TriggerRequest, plan_incident
from tocsin.postmortem.state import ApproveRequest, RequestChangesRequest
from tocsin.receiver.heartbeat_routes import temporal_ping
from tocsin.runbook.contracts import RunRunbookRequest
from tocsin.runbook.guard_contracts import GUARD_WORKFLOW_ID
from tocsin.settings import Settings
from tocsin.storm.contracts import STORM_GUARD_WORKFLOW_ID

HISTORIES = Path(__file__).resolve().with_name("histories")
Scenario = Callable[[WorkflowEnvironment, str], Awaitable[None]]


async def unacknowledged_sev1(env: WorkflowEnvironment, key: str) -> None:
    """The whole primary chain, both management steps, then resolution and the post-mortem hand-off."""
    await env.sleep(timedelta(minutes=65))
    await send_update(env.client, key, "resolve", ResolveRequest(by="alice", summary="restarted the pods"))


async def worked_sev2(env: WorkflowEnvironment, key: str) -> None:
    """Every update and the alert signal, in the order a busy night produces them."""
    handle = env.client.get_workflow_handle(f"incident-{key}")
    await handle.signal(
        "alerts", AlertBatch(events=[AlertEvent(fingerprint="f1", status="firing", summary="p95 > 1s")])
    )
    await env.sleep(timedelta(minutes=3))
    await send_update(env.client, key, "escalate", EscalateRequest(by="bob", reason="need the DBA"))
    await env.sleep(timedelta(minutes=1))
    await send_update(env.client, key, "acknowledge", AcknowledgeRequest(by="dba"))
    await send_update(
        env.client, key, "set_severity", SetSeverityRequest(by="dba", severity="sev1", reason="all users")
    )
    await env.sleep(timedelta(minutes=31))
    await send_update(env.client, key, "annotate", AnnotateRequest(by="dba", text="read replicas enabled"))
    await send_update(env.client, key, "mitigate", MitigateRequest(by="dba", summary="traffic shifted"))
    await handle.signal(
        "alerts", AlertBatch(events=[AlertEvent(fingerprint="f1", status="resolved", summary="p95 > 1s")])
    )
    await send_update(env.client, key, "resolve", ResolveRequest(by="dba"))


async def runbook_ran(env: WorkflowEnvironment, key: str) -> None:
    """The response workflow's runbook runs to its end (mitigated, or compensated and escalated); then a person
    resolves the incident."""
    await env.sleep(timedelta(minutes=18))
    await send_update(env.client, key, "resolve", ResolveRequest(by="alice", summary="done"))
    # The runbook guard granted the service, then took the release: its history so far.
    await _record_running(env.client, GUARD_WORKFLOW_ID, "runbookguard-golden-service-held")


async def runbook_by_name(env: WorkflowEnvironment, key: str) -> None:
    """As runbook_ran, after runbooks-by-name: the response workflow's runbook is checked against the worker's
    policy before it runs; then a person asks for a runbook by name with a label the worker refuses to plan
    (a namespace off the allow-list): refused, on the timeline. Then the incident is resolved."""
    await env.sleep(timedelta(minutes=18))
    request = RunRunbookRequest(runbook="service_recovery_playbook", labels={"namespace": "kube-system"}, by="bob")
    await send_update(env.client, key, "run_runbook", request)
    await env.sleep(timedelta(minutes=1))
    await send_update(env.client, key, "resolve", ResolveRequest(by="alice", summary="done"))


async def acknowledged_then_quiet(env: WorkflowEnvironment, key: str) -> None:
    """Alice acknowledges from Slack and goes quiet: sev1's ack_timeout pages her again and the chain resumes;
    bob takes the incident over via PagerDuty, then resolves it."""
    await env.sleep(timedelta(minutes=1))
    await send_update(env.client, key, "acknowledge", AcknowledgeRequest(by="alice", via="slack"))
    await env.sleep(timedelta(minutes=37))
    await send_update(env.client, key, "take", TakeRequest(by="bob", via="pagerduty"))
    await env.sleep(timedelta(minutes=1))
    await send_update(env.client, key, "resolve", ResolveRequest(by="bob", summary="failed over"))


async def snoozed(env: WorkflowEnvironment, key: str) -> None:
    """Paging snoozed for 20 minutes by SMS (management escalation goes on); then the chain resumes; resolved."""
    await env.sleep(timedelta(seconds=30))
    await send_update(
        env.client, key, "snooze", SnoozeRequest(by="alice", duration=timedelta(minutes=20), via="twilio")
    )
    await env.sleep(timedelta(minutes=26))
    await send_update(env.client, key, "resolve", ResolveRequest(by="alice", summary="cache warmed"))


async def quiet_sev3(env: WorkflowEnvironment, key: str) -> None:
    """No paging, both targets missed, no post-mortem."""
    await env.sleep(timedelta(hours=3))
    await send_update(env.client, key, "resolve", ResolveRequest(by="carol"))


async def alerts_auto_resolve(env: WorkflowEnvironment, key: str) -> None:
    """Alerts through the intake: a batch fires, flaps, clears, and the incident resolves itself."""
    handle = env.client.get_workflow_handle(f"incident-{key}")
    firing = AlertEvent(fingerprint="f1", status="firing", summary="queue backlog")
    await handle.signal("alerts", AlertBatch(events=[firing, firing.model_copy(update={"fingerprint": "f2"})]))
    await env.sleep(timedelta(minutes=2))
    resolved = [firing.model_copy(update={"status": "resolved", "fingerprint": f}) for f in ("f1", "f2")]
    await handle.signal("alerts", AlertBatch(events=resolved[:1]))
    await env.sleep(timedelta(minutes=1))
    await handle.signal("alerts", AlertBatch(events=resolved[1:]))
    await env.sleep(timedelta(minutes=6))


async def held_by_a_storm(env: WorkflowEnvironment, key: str) -> None:
    """The 21st new incident within five minutes: held by the storm, then a person escalates it out of it,
    acknowledges and resolves it; the storm incident summarizes the burst and is resolved."""
    await env.sleep(timedelta(minutes=1))
    await send_update(env.client, key, "escalate", EscalateRequest(by="bob", reason="this one is mine"))
    await env.sleep(timedelta(minutes=2))
    await send_update(env.client, key, "acknowledge", AcknowledgeRequest(by="bob"))
    await env.sleep(timedelta(minutes=6))
    state = await get_incident(env.client, key)
    assert state.storm_key, "the scenario's incident joined a storm"
    await send_update(env.client, state.storm_key, "resolve", ResolveRequest(by="alice", summary="zone back"))
    await _record(env.client, f"incident-{state.storm_key}", as_name="incident-golden-storm")
    await _record_running(env.client, STORM_GUARD_WORKFLOW_ID, "stormguard-golden-burst")
    await send_update(env.client, key, "resolve", ResolveRequest(by="bob"))


async def held_by_a_window(env: WorkflowEnvironment, key: str) -> None:
    """Opened from an alert while a one-off maintenance window holds checkout (started before it opened):
    nobody is paged; the window is ended early and the registry's notice reaches the incident, which pages
    once (catch-up); acknowledged and resolved. The registry's own history is recorded too."""
    await env.sleep(timedelta(minutes=2))
    windows = await current_windows(env.client)
    ended = await end_window(env.client, EndWindow(id=windows.windows[0].id, by="alice"))
    # The registry tells the incident through visibility, which the test server lacks: sent as it would send it.
    handle = env.client.get_workflow_handle(f"incident-{key}")
    await handle.signal("maintenance", WindowNotice(window=ended, ended=True))
    await env.sleep(timedelta(minutes=1))
    await send_update(env.client, key, "acknowledge", AcknowledgeRequest(by="alice"))
    await send_update(env.client, key, "resolve", ResolveRequest(by="alice", summary="deploy finished"))
    await _record_running(env.client, MAINTENANCE_WORKFLOW_ID, "maintenance-golden-registry")


SCENARIOS: dict[str, tuple[str, dict[str, str], Scenario]] = {
    "sev1-unacknowledged": (
        "sev1",
        {"alertname": "ServiceAvailabilityLow", "environment": "prod"},
        unacknowledged_sev1,
    ),
    "sev2-worked": ("sev2", {"alertname": "DatabaseQueryLatencyHigh", "database": "orders"}, worked_sev2),
    "sev3-quiet": ("sev3", {}, quiet_sev3),
    "sev3-alerts-auto-resolve": ("sev3", {"alertname": "QueueBacklog"}, alerts_auto_resolve),
    # Against tests/support/runbook_stack.py: the service recovery playbook scales, restarts, verifies and mitigates;
    # then a second run whose verification never holds, and compensates.
    "sev1-runbook-mitigated": (
        "sev1",
        {"alertname": "ServiceAvailabilityLow", "environment": "prod"},
        runbook_ran,
    ),
    "sev1-runbook-compensated": (
        "sev1",
        {"alertname": "ServiceAvailabilityLow", "environment": "prod"},
        runbook_ran,
    ),
    # Opened as the 21st new incident within the storm window.
    "sev1-storm-member": ("sev1", {"alertname": "ZoneDown", "environment": "prod"}, held_by_a_storm),
    # Responders (#14): an acknowledgement that lapses, a take-over, a snooze.
    "sev1-ack-timeout-taken-over": ("sev1", {"alertname": "ServiceAvailabilityLow"}, acknowledged_then_quiet),
    "sev1-snoozed": ("sev1", {"alertname": "ServiceAvailabilityLow"}, snoozed),
    # A runbook asked for by name that the worker plans from its own policy, and one it refuses to plan.
    "sev1-runbook-by-name": (
        "sev1",
        {"alertname": "ServiceAvailabilityLow", "environment": "prod"},
        runbook_by_name,
    ),
    # Maintenance windows (#16): held by a one-off window, then one catch-up page when it is ended early.
    "sev1-maintenance-held": ("sev1", {"alertname": "ServiceAvailabilityLow"}, held_by_a_window),
}
# Scenarios opened while a one-off maintenance window holds their service.
WINDOW_SCENARIOS = {"sev1-maintenance-held"}
# Scenarios opened from an alert source after this many other new incidents (a storm's threshold).
STORM_SCENARIOS = {"sev1-storm-member": 20}
# The error rate Prometheus answers in each runbook scenario: below the playbook's 5% verifies, above fails.
RUNBOOK_SCENARIOS = {
    "sev1-runbook-mitigated": "0.01",
    "sev1-runbook-compensated": "0.30",
    "sev1-runbook-by-name": "0.01",
}
# The runbook runs recorded per scenario (runbook-<key>-<n>); by default the first only.
RUNBOOK_RUNS = {"sev1-runbook-by-name": (1, 3)}


async def _record(client: Client, workflow_id: str, as_name: str | None = None) -> None:
    handle = client.get_workflow_handle(workflow_id)
    await handle.result()
    history = await handle.fetch_history()
    (HISTORIES / f"{as_name or workflow_id}.json").write_text(history.to_json() + "\n", encoding="utf-8")
    print(f"recorded {workflow_id}: {len(history.events)} events")


async def _record_running(client: Client, workflow_id: str, as_name: str) -> None:
    """A long-running workflow (a guard, a registry, a heartbeat) never completes: its history so far is what is
    replayed. Kept like every other file once it exists."""
    path = HISTORIES / f"{as_name}.json"
    if path.exists():
        return
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    path.write_text(history.to_json() + "\n", encoding="utf-8")
    print(f"recorded {workflow_id}: {len(history.events)} events")


@contextlib.asynccontextmanager
async def fresh_server() -> AsyncIterator[tuple[WorkflowEnvironment, Settings]]:
    """A time-skipping server of its own (the test server's clock stalls after an abandoned child) and a state
    dir of its own, for one recording."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=venv_binary("temporal-test-server"), data_converter=pydantic_data_converter
    )
    try:
        await sa.register(env.client, "default")
        yield env, Settings(home=Path(tempfile.mkdtemp(prefix="tocsin-histories-")))
    finally:
        await env.shutdown()


def _recorded(name: str) -> bool:
    # Existing histories are never overwritten: they stand for incidents recorded by older code.
    return (HISTORIES / f"incident-golden-{name}.json").exists()


async def main() -> None:
    HISTORIES.mkdir(parents=True, exist_ok=True)
    policy = load_policy(ROOT / "policies" / "default.yaml")
    for name, (severity, labels, scenario) in SCENARIOS.items():
        if _recorded(name):
            print(f"kept {name}")
            continue
        # A fresh server per scenario: the test server's clock stalls after an abandoned child.
        async with fresh_server() as (env, settings), contextlib.AsyncExitStack() as stack:
            runbooks = None
            if name in RUNBOOK_SCENARIOS:
                cluster = stack.enter_context(running_stack())
                cluster.error_rate = RUNBOOK_SCENARIOS[name]
                runbooks = cluster.activities()
            await stack.enter_async_context(run_workers(env.client, settings, runbooks=runbooks))
            key = f"golden-{name}"
            source = "cli"
            if name in STORM_SCENARIOS:
                source = "alertmanager"
                for n in range(STORM_SCENARIOS[name]):
                    other = TriggerRequest(service=f"svc{n}", severity=severity, key=f"other-{n}", source=source)
                    assert await open_incident(env.client, plan_incident(policy, other, datetime.now(UTC)))
                await env.sleep(timedelta(seconds=5))
            if name in WINDOW_SCENARIOS:
                source = "alertmanager"
                deploy = StartWindow(service="checkout", duration=timedelta(hours=1), reason="deploy", by="alice")
                await start_window(env.client, deploy)
            request = TriggerRequest(service="checkout", severity=severity, labels=labels, key=key, source=source)
            assert await open_incident(env.client, plan_incident(policy, request, datetime.now(UTC)))
            await scenario(env, key)
            await _record(env.client, f"incident-{key}")
            # Post-mortems now wait days for a review: their pipeline is recorded on its own, below.
            if name in RUNBOOK_SCENARIOS:
                for n in RUNBOOK_RUNS.get(name, (1,)):
                    await _record(env.client, f"runbook-{key}-{n}")
    await record_postmortem_pipeline(policy)
    await record_heartbeat()


async def record_heartbeat() -> None:
    """A heartbeat pinged twice, then silent past interval + grace (its incident opens), then pinged again (the
    incident resolves)."""
    name = "watchdog"
    if (HISTORIES / f"heartbeat-golden-{name}.json").exists():
        print(f"kept heartbeat {name}")
        return
    async with fresh_server() as (env, settings):
        beat = Heartbeat(interval=timedelta(minutes=1), grace=timedelta(seconds=30), service="monitoring")
        ping = temporal_ping(env.client)
        async with run_workers(env.client, settings):
            await ping(name, beat)
            await env.sleep(timedelta(seconds=30))
            await ping(name, beat)
            await env.sleep(timedelta(minutes=2))
            # The missed deadline's activity opens the incident in real time: wait for it, then ping.
            for _ in range(200):
                with contextlib.suppress(Exception):
                    await get_incident(env.client, heartbeat_incident_key(name, 1))
                    break
                await asyncio.sleep(0.05)
            await ping(name, beat)
            await env.sleep(timedelta(seconds=5))
            for _ in range(200):
                if (await get_incident(env.client, heartbeat_incident_key(name, 1))).status == "resolved":
                    break
                await asyncio.sleep(0.05)
            await _record_running(env.client, heartbeat_workflow_id(name), f"heartbeat-golden-{name}")


async def record_postmortem_pipeline(policy: Policy) -> None:
    """The whole pipeline with nothing configured (every source skipped, the built-in analyzer, no GitHub):
    a draft, changes requested, a second draft, approval, publication to disk, weekly follow-through with
    nudges until the horizon. Started directly: the test server stalls the timers of an abandoned child."""
    workflow_id = "postmortem-golden-pipeline"
    if (HISTORIES / f"{workflow_id}.json").exists():
        print(f"kept {workflow_id}")
        return
    async with fresh_server() as (env, settings), run_workers(env.client, settings):
        now = datetime.now(UTC)
        request = TriggerRequest(service="checkout", severity="sev1", key="golden-pipeline")
        incident = plan_incident(policy, request, now)
        state = IncidentState(
            key=incident.key,
            title=incident.title,
            service=incident.service,
            severity=incident.severity,
            status="resolved",
            opened_at=now - timedelta(hours=2),
            acknowledged_by="alice",
            acknowledged_at=now - timedelta(hours=1, minutes=55),
            resolved_by="alice",
            resolved_at=now - timedelta(hours=1),
            timeline=[
                TimelineEntry(at=now - timedelta(hours=2), kind="opened", text="checkout down (from cli)"),
                TimelineEntry(at=now - timedelta(hours=1), kind="resolved", text="resolved by alice", by="alice"),
            ],
        )
        handoff = PostMortemInput(
            incident=state,
            policy=policy,
            parent_workflow_id="incident-golden-pipeline",
            parent_run_id="00000000-0000-0000-0000-000000000000",
        )
        handle = await env.client.start_workflow(
            "PostMortemWorkflow", handoff, id=workflow_id, task_queue=POSTMORTEM_TASK_QUEUE
        )
        await env.sleep(timedelta(minutes=1))
        await handle.execute_update("request_changes", RequestChangesRequest(by="erin", notes="name the deploy"))
        await env.sleep(timedelta(hours=2))
        await handle.execute_update("approve", ApproveRequest(by="erin"))
        await env.sleep(timedelta(days=100))
        await _record(env.client, workflow_id)


if __name__ == "__main__":
    asyncio.run(main())
