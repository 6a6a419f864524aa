"""A heartbeat against a real dev server, in real time: pinged twice then silent, its incident opens within a few
seconds of interval + grace, not before; the next ping resolves it."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from tests.support.harness import run_workers
from tocsin.heartbeat.contracts import HeartbeatStatus, heartbeat_incident_key, heartbeat_workflow_id
from tocsin.incident.client import get_incident
from tocsin.incident.contracts import incident_workflow_id
from tocsin.policy.heartbeats import Heartbeat
from tocsin.receiver.heartbeat_routes import temporal_ping
from tocsin.settings import Settings

# The shortest interval the policy accepts, so the test waits about 12 s of real time.
BEAT = Heartbeat(interval=timedelta(seconds=10), grace=timedelta(seconds=2), service="monitoring", severity="sev2")


async def _opened(env: WorkflowEnvironment, key: str) -> bool:
    try:
        await env.client.get_workflow_handle(incident_workflow_id(key)).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def test_missed_heartbeat_opens_near_its_deadline_and_a_ping_resolves(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    name = f"watchdog-{uuid.uuid4().hex[:8]}"
    key = heartbeat_incident_key(name, 1)
    ping = temporal_ping(dev_env.client)
    handle = dev_env.client.get_workflow_handle(heartbeat_workflow_id(name))
    async with run_workers(dev_env.client, Settings(home=tmp_path)):
        await ping(name, BEAT)
        await asyncio.sleep(1)
        await ping(name, BEAT)
        for _ in range(50):
            status: HeartbeatStatus = await handle.query("status", result_type=HeartbeatStatus)
            if status.pings == 2:
                break
            await asyncio.sleep(0.1)
        assert status.pings == 2 and status.due is not None
        due = status.due

        # Silent: a second and a half before the deadline nothing is open.
        await asyncio.sleep((due - datetime.now(UTC)).total_seconds() - 1.5)
        assert not await _opened(dev_env, key)

        started = time.monotonic()
        while not await _opened(dev_env, key):
            assert time.monotonic() - started < 10, "the incident did not open within a few seconds of its deadline"
            await asyncio.sleep(0.1)
        opened_at = datetime.now(UTC)
        assert opened_at - due < timedelta(seconds=4)
        incident = await get_incident(dev_env.client, key)
        assert incident.title == f"Heartbeat {name} missed"
        assert incident.first_alert_at is not None and incident.first_alert_at >= due

        await ping(name, BEAT)
        for _ in range(100):
            incident = await get_incident(dev_env.client, key)
            if incident.status == "resolved":
                break
            await asyncio.sleep(0.1)
        assert incident.status == "resolved" and incident.resolved_by == "tocsin"
