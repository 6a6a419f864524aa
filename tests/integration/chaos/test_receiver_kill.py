"""SIGKILL `tocsin receiver` mid-POST, twice, while a sender keeps retrying the same large Alertmanager payload
(as Alertmanager does when the connection fails): once while the body is still arriving, once after Temporal
has applied the alerts but before the receiver could answer. Alerts coalesce by fingerprint, so the incidents
must hold each alert once, open once, and page once per step.

The second kill needs the receiver to be between "Temporal applied it" and "the sender heard so": a proxy in
front of Temporal (tests/integration/chaos/processes.py) holds Temporal's answers back while the receiver is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from datetime import UTC, datetime

import httpx
import pytest

from tests.integration.chaos.checks import (
    Figure,
    assert_no_duplicate_effects,
    assert_on_schedule,
    page_schedule,
    timings,
)
from tests.integration.chaos.conftest import Stack, until
from tests.integration.chaos.processes import AnswerHoldingProxy
from tests.integration.chaos.vendors import step_of
from tests.support.product import free_ports

SERVICES = 3
ALERTS_PER_SERVICE = 300
ENDPOINT = "/api/v1/alerts/alertmanager"


def alertmanager_payload() -> bytes:
    """One webhook (version 4) of 900 firing alerts, 300 pods of 3 services: about 500 KB."""
    started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    alerts = [
        {
            "status": "firing",
            "labels": {
                "alertname": "QueueBacklog",
                "service": f"queue-{s}",
                "environment": "prod",
                "severity": "critical",
                "pod": f"worker-{p:04d}",
            },
            "annotations": {"summary": f"queue-{s} worker-{p:04d} is {p} jobs behind; " + "backlog " * 40},
            "startsAt": started,
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph",
            "fingerprint": f"{s:04x}{p:012x}",
        }
        for s in range(SERVICES)
        for p in range(ALERTS_PER_SERVICE)
    ]
    webhook = {
        "version": "4",
        "groupKey": '{}:{alertname="QueueBacklog"}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "tocsin",
        "groupLabels": {"alertname": "QueueBacklog"},
        "commonLabels": {"alertname": "QueueBacklog", "environment": "prod", "severity": "critical"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": alerts,
    }
    return json.dumps(webhook).encode()


def send_half(port: int, body: bytes) -> socket.socket:
    """The request line, the headers and half the body: a POST the receiver is in the middle of reading."""
    conn = socket.create_connection(("127.0.0.1", port))
    head = (
        f"POST {ENDPOINT} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    conn.sendall(head + body[: len(body) // 2])
    return conn


def post(port: int, body: bytes) -> httpx.Response | httpx.TransportError:
    """One attempt, as a sender makes it: an answer, or the connection failing under it."""
    try:
        return httpx.post(
            f"http://127.0.0.1:{port}{ENDPOINT}",
            content=body,
            headers={"Content-Type": "application/json"},
            timeout=60,
        )
    except httpx.TransportError as err:
        return err


@pytest.mark.chaos
@pytest.mark.chaos_quick
async def test_receiver_killed_mid_post_and_the_sender_retries(stack: Stack, figures: list[Figure]) -> None:
    ledger, client = stack.vendors.ledger, stack.client
    proxy = AnswerHoldingProxy(stack.temporal.port)
    (http_port,) = free_ports(1)
    worker = stack.tocsin("worker")
    receiver = stack.tocsin("receiver", address=proxy.address, TOCSIN_HTTP_PORT=str(http_port))
    body = alertmanager_payload()

    async def incidents() -> list[str]:
        return [wf.id async for wf in client.list_workflows("WorkflowType = 'IncidentWorkflow'")]

    try:
        await asyncio.gather(stack.start(worker), stack.start(receiver))

        # 1. Killed while the body arrives: the sender's connection breaks, nothing was applied.
        conn = send_half(http_port, body)
        await asyncio.sleep(0.5)
        receiver.kill()
        conn.settimeout(5)
        with contextlib.suppress(ConnectionResetError):
            assert conn.recv(1) == b"", "the receiver answered a body it never fully received"
        conn.close()
        assert await incidents() == []

        # 2. The sender's retry: Temporal applies every alert, its answers are held, the receiver is killed
        #    before it can answer. The sender sees its connection fail again.
        await stack.start(receiver)
        proxy.holding.set()
        attempt = asyncio.create_task(asyncio.to_thread(post, http_port, body))
        deadline = time.monotonic() + 30
        while len(await incidents()) < SERVICES:
            assert time.monotonic() < deadline, "Temporal never received the alerts"
            await asyncio.sleep(0.1)
        applied = {wf: (await client.get_workflow_handle(wf).describe()).run_id for wf in await incidents()}
        killed = receiver.kill()
        outcome = await attempt
        assert isinstance(outcome, httpx.TransportError), outcome
        proxy.holding.clear()
        for key in applied:  # the held attempt delivered every alert before the kill
            state = await stack.incident(key.removeprefix("incident-"))
            assert len(state.alerts) == ALERTS_PER_SERVICE, len(state.alerts)

        # 3. The sender retries once more, and is answered.
        await stack.start(receiver)
        answer = await asyncio.to_thread(post, http_port, body)
        accepted = time.time()
        assert isinstance(answer, httpx.Response) and answer.status_code == 202, answer
        assert answer.json()["alerts"] == SERVICES * ALERTS_PER_SERVICE
        keys = sorted(answer.json()["keys"])
        assert sorted(f"incident-{k}" for k in keys) == sorted(applied)

        # Each incident paged at once and again on schedule: wait for both pages of each.
        pages = page_schedule(stack.policy)[:2]  # the PagerDuty step: at once, and once more
        await until(
            lambda: all(ledger.first_at(d.step, f"incident-{k}") for k in keys for d in pages),
            30,
            "both PagerDuty pages of every incident",
        )
        await asyncio.sleep(0.5)
    finally:
        proxy.close()

    found = []
    for key in keys:
        handle = client.get_workflow_handle(f"incident-{key}")
        # One incident per key, the run the held attempt opened: the retries signalled it, never reopened it.
        assert (await handle.describe()).run_id == applied[f"incident-{key}"]
        runs = [wf async for wf in client.list_workflows(f"WorkflowId = 'incident-{key}'")]
        assert len(runs) == 1, runs
        state = await stack.incident(key)
        # Every alert counted once: the same 300 fingerprints, from the held attempt and the answered one.
        assert len(state.alerts) == ALERTS_PER_SERVICE, len(state.alerts)
        assert state.severity == "sev1"
        opened = state.opened_at.timestamp()
        found += timings(ledger, key, pages, opened)
    assert_on_schedule(found)
    # 0 duplicate pages or other effects: no request reached any vendor twice.
    assert stack.vendors.pagerduty.opened == SERVICES
    assert_no_duplicate_effects(ledger)
    assert {step_of(k): n for (_, k), n in ledger.requests_per_key().items() if n > 1} == {}
    figures.append(
        Figure.of(
            "receiver SIGKILL mid-POST (body arriving; applied, unanswered), sender retries",
            ledger,
            found,
            kills=2,
            expected=len(pages) * SERVICES,
            delivered=sum(1 for k in keys for d in pages if ledger.first_at(d.step, f"incident-{k}")),
            recovery=accepted - killed,
        )
    )
