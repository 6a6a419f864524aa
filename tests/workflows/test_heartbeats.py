"""Heartbeats on the time-skipping server: pinged twice then silent, the incident opens after interval + grace
and not before; the next ping resolves it (by "tocsin")."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

from temporalio.client import WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from tocsin.cli.heartbeats import statuses
from tocsin.heartbeat.contracts import HeartbeatStatus, heartbeat_workflow_id
from tocsin.incident.client import get_incident
from tocsin.incident.contracts import IncidentState, incident_workflow_id
from tocsin.policy.heartbeats import Heartbeat
from tocsin.receiver.heartbeat_routes import temporal_ping
from tocsin.settings import Settings

BEAT = Heartbeat(interval=timedelta(minutes=1), grace=timedelta(seconds=30), service="monitoring", severity="sev2")
NAME = "prometheus-watchdog"
KEY = f"heartbeat-{NAME}-1"


async def status(handle: WorkflowHandle[object, object]) -> HeartbeatStatus:
    answer: HeartbeatStatus = await handle.query("status", result_type=HeartbeatStatus)
    return answer


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll in real time: activities run in real time while the test server's clock stands still."""
    for _ in range(200):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


async def incident_exists(env: WorkflowEnvironment) -> bool:
    try:
        await env.client.get_workflow_handle(incident_workflow_id(KEY)).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def test_silent_heartbeat_opens_after_interval_plus_grace_and_a_ping_resolves(
    env: WorkflowEnvironment, workers: Settings
) -> None:
    ping = temporal_ping(env.client)
    handle = env.client.get_workflow_handle(heartbeat_workflow_id(NAME))
    await ping(NAME, BEAT)
    await until(lambda: _pings(handle, 1), "first ping handled")
    first = (await status(handle)).last_ping
    assert first is not None
    await env.sleep(timedelta(seconds=30))
    await ping(NAME, BEAT)
    await until(lambda: _pings(handle, 2), "second ping handled")
    second = await status(handle)
    assert second.state == "ok"
    assert second.last_ping is not None and second.due == second.last_ping + timedelta(seconds=90)

    # Silent from here: 5 s before the deadline nothing is open.
    await env.sleep(timedelta(seconds=85))
    await asyncio.sleep(0.3)
    assert not await incident_exists(env)
    assert (await status(handle)).state == "ok"

    await env.sleep(timedelta(seconds=10))
    await until(lambda: incident_exists(env), "incident opened")
    incident = await get_incident(env.client, KEY)
    assert incident.title == f"Heartbeat {NAME} missed"
    assert incident.service == "monitoring" and incident.severity == "sev2"
    # Its clock starts at the missed deadline (the timer fires within milliseconds of it).
    assert second.due is not None and incident.first_alert_at is not None
    assert second.due <= incident.first_alert_at < second.due + timedelta(seconds=1)
    await until(lambda: _state(handle, "missed"), "heartbeat reports missed")
    assert (await status(handle)).open_incident == KEY
    # `tocsin heartbeats` asks the same: the missed one with its incident, one never pinged waiting.
    listed = await statuses(env.client, [NAME, "never-pinged"])
    assert [(r.name, r.state, r.open_incident) for r in listed] == [
        (NAME, "missed", KEY),
        ("never-pinged", "waiting", None),
    ]

    await ping(NAME, BEAT)
    await until(lambda: _resolved(env), "incident resolved by the next ping")
    resolved = await get_incident(env.client, KEY)
    assert resolved.resolved_by == "tocsin"
    after = await status(handle)
    assert after.state == "ok" and after.open_incident is None and after.misses == 1 and after.pings == 3


async def _pings(handle: WorkflowHandle[object, object], n: int) -> bool:
    return (await status(handle)).pings == n


async def _state(handle: WorkflowHandle[object, object], state: str) -> bool:
    return (await status(handle)).state == state


async def _resolved(env: WorkflowEnvironment) -> bool:
    state: IncidentState = await get_incident(env.client, KEY)
    return state.status == "resolved"
