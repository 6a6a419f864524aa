"""The receiver in front of a real Temporal: concurrent posts of one alert, one payload over many keys, and
what an Alertmanager sees when Temporal goes away (503, which it retries)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from tests.support.harness import venv_binary
from tocsin import search_attributes as sa
from tocsin.incident.client import get_incident, send_update
from tocsin.incident.updates import ResolveRequest
from tocsin.policy.schema import Policy
from tocsin.receiver.config import ReceiverConfig
from tocsin.receiver.serve import temporal_app
from tocsin.settings import Settings


def am_payload(alerts: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": "{}:{}",
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "tocsin",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example",
        "alerts": alerts,
    }


def am_alert(service: str, fingerprint: str, status: str = "firing") -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": "DiskFilling", "service": service, "environment": "prod", "severity": "warning"},
        "annotations": {"summary": f"disk filling on {service}"},
        "startsAt": "2026-11-27T10:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example/graph",
        "fingerprint": fingerprint,
    }


def receiver(env: WorkflowEnvironment, policy: Policy) -> httpx.AsyncClient:
    app = temporal_app(env.client, policy, ReceiverConfig())
    # A loopback name: an open receiver answers no other (tests/unit/test_receiver_host.py).
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://[::1]:8080")


async def test_fifty_concurrent_posts_of_one_alert_are_one_incident(
    env: WorkflowEnvironment, workers: Settings, default_policy: Policy
) -> None:
    async with receiver(env, default_policy) as http:
        body = am_payload([am_alert("ledger", "ledger-disk")])
        answers = await asyncio.gather(*(http.post("/api/v1/alerts/alertmanager", json=body) for _ in range(50)))
    assert {a.status_code for a in answers} == {202}
    keys = {k for a in answers for k in a.json()["keys"]}
    assert len(keys) == 1
    (key,) = keys
    await env.sleep(timedelta(seconds=2))
    state = await get_incident(env.client, key)
    assert state.alerts["ledger-disk"].count == 50
    assert [e.kind for e in state.timeline].count("opened") == 1
    await send_update(env.client, key, "resolve", ResolveRequest(by="test"))


async def test_one_payload_of_500_alerts_over_20_keys_is_20_incidents(
    env: WorkflowEnvironment, workers: Settings, default_policy: Policy
) -> None:
    alerts = [am_alert(f"svc{k}", f"svc{k}-pod{i}") for k in range(20) for i in range(25)]
    async with receiver(env, default_policy) as http:
        answer = await http.post("/api/v1/alerts/alertmanager", json=am_payload(alerts))
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["alerts"] == 500
    assert len(body["keys"]) == 20
    for key in body["keys"]:
        state = await get_incident(env.client, key)
        assert len(state.alerts) == 25, "every alert recorded on its incident"
        await send_update(env.client, key, "resolve", ResolveRequest(by="test"))


async def test_temporal_down_answers_503_so_the_sender_retries(default_policy: Policy) -> None:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=venv_binary("temporal"),
        search_attributes=list(sa.ALL),
        data_converter=pydantic_data_converter,
    )
    async with receiver(env, default_policy) as http:
        assert (await http.get("/healthz")).status_code == 200
        await env.shutdown()
        answer = await http.post("/api/v1/alerts/alertmanager", json=am_payload([am_alert("api", "api-disk")]))
        health = await http.get("/healthz")
    assert answer.status_code == 503
    assert answer.json()["reason"] == "temporal_unavailable"
    assert answer.headers["Retry-After"]
    assert health.status_code == 503
