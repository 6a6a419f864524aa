"""The receiver's HTTP layer against a recording fake ingest: every answer, and nothing ingested on a refusal."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from tests.support.alerts import ALERTMANAGER, GRAFANA, PAGERDUTY_TRIGGER, ROUTING_KEY, json_values
from tests.support.receiver_socket import serving
from tocsin.addresses import is_loopback
from tocsin.intake.contracts import IngestResult, NormalizedAlert, TemporalUnavailable
from tocsin.receiver.app import ENDPOINTS, create_app
from tocsin.receiver.auth import sign
from tocsin.receiver.config import ReceiverConfig, ReceiverConfigError, ReceiverError, load_receiver_config
from tocsin.receiver.serve import announce, bind
from tocsin.settings import load_settings

TOKEN = "t0ken-for-tests-0123456789abcdef"
SECRET = "hmac-secret-for-tests"
OTHER_KEY = "X" * 32
GENERIC = {"labels": {"alertname": "QueueBacklog", "service": "billing"}, "summary": "queue is deep"}


class FakeIngest:
    """Records every call; answers like the real one, or raises what it is told to."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.calls: list[list[NormalizedAlert]] = []
        self.error = error

    async def __call__(self, alerts: list[NormalizedAlert]) -> IngestResult:
        if self.error is not None:
            raise self.error
        self.calls.append(alerts)
        keys = sorted({a.dedup_key or a.labels.get("service", "none") for a in alerts})
        return IngestResult(keys=keys, alerts=len(alerts), opened_or_updated=len(keys))


def healthy(answer: bool = True) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return answer

    return check


def secured(**overrides: Any) -> ReceiverConfig:
    fields: dict[str, Any] = {
        "token": SecretStr(TOKEN),
        "hmac_secret": SecretStr(SECRET),
        "pagerduty_routing_keys": (SecretStr(ROUTING_KEY),),
    }
    return ReceiverConfig(**{**fields, **overrides})


BEARER = {"Authorization": f"Bearer {TOKEN}"}


class Receiver:
    def __init__(self, config: ReceiverConfig, ingest: FakeIngest, health: Callable[[], Awaitable[bool]]) -> None:
        self.ingest = ingest
        self.app = create_app(ingest=ingest, healthcheck=health, config=config)
        # A loopback name: an open receiver answers no other (tests/unit/test_receiver_host.py).
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://127.0.0.1:8080")

    async def post(self, path: str, body: object, headers: dict[str, str] | None = None) -> httpx.Response:
        return await self.http.post(path, json=body, headers=headers)

    async def metric(self, name: str, **labels: str) -> float:
        text = (await self.http.get("/metrics")).text
        wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        for line in text.splitlines():
            if line.startswith("#"):
                continue
            metric, _, value = line.rpartition(" ")
            mname, _, mlabels = metric.partition("{")
            got = ",".join(sorted(mlabels.rstrip("}").split(","))) if mlabels else ""
            if mname == name and got == wanted:
                return float(value)
        return 0.0


@pytest.fixture
async def open_receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver(ReceiverConfig(), FakeIngest(), healthy())
    yield receiver
    await receiver.http.aclose()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver(secured(), FakeIngest(), healthy())
    yield receiver
    await receiver.http.aclose()


def signed(body: bytes, timestamp: int | None = None, secret: str = SECRET) -> dict[str, str]:
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        "Content-Type": "application/json",
        "X-Tocsin-Timestamp": str(ts),
        "X-Tocsin-Signature": sign(secret, ts, body),
    }


# --- 202 ----------------------------------------------------------------------------------------------------


async def test_alertmanager_202_with_the_incident_keys(receiver: Receiver) -> None:
    r = await receiver.post(ENDPOINTS["alertmanager"], ALERTMANAGER, BEARER)
    assert r.status_code == 202
    assert r.json() == {"keys": ["checkout"], "alerts": 2, "opened_or_updated": 1}
    (alerts,) = receiver.ingest.calls
    assert [(a.source, a.status, a.fingerprint) for a in alerts] == [
        ("alertmanager", "firing", "5f1c0d1a6c8e2b3f"),
        ("alertmanager", "resolved", "0e9b2a61d7c4f810"),
    ]


async def test_truncated_alerts_are_answered_logged_and_counted(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    payload = {**ALERTMANAGER, "truncatedAlerts": 4}
    with caplog.at_level(logging.WARNING, logger="tocsin.receiver"):
        r = await receiver.post(ENDPOINTS["alertmanager"], payload, BEARER)
    assert r.status_code == 202
    assert r.json() == {"keys": ["checkout"], "alerts": 2, "opened_or_updated": 1, "truncated_alerts": 4}
    assert "left 4 alerts out" in caplog.text
    assert await receiver.metric("tocsin_alerts_truncated_total", source="alertmanager") == 4


async def test_grafana_202(receiver: Receiver) -> None:
    r = await receiver.post(ENDPOINTS["grafana"], GRAFANA, BEARER)
    assert r.status_code == 202
    assert r.json() == {"keys": ["none"], "alerts": 2, "opened_or_updated": 1}
    assert [a.source for a in receiver.ingest.calls[0]] == ["grafana", "grafana"]


async def test_generic_single_and_list(receiver: Receiver) -> None:
    r = await receiver.post(ENDPOINTS["generic"], GENERIC, BEARER)
    assert (r.status_code, r.json()) == (202, {"keys": ["billing"], "alerts": 1, "opened_or_updated": 1})
    second = {"labels": {"alertname": "QueueBacklog", "service": "search"}, "status": "resolved"}
    r = await receiver.post(ENDPOINTS["generic"], [GENERIC, second], BEARER)
    assert (r.status_code, r.json()) == (202, {"keys": ["billing", "search"], "alerts": 2, "opened_or_updated": 2})
    assert [len(c) for c in receiver.ingest.calls] == [1, 2]


async def test_an_empty_group_is_accepted_without_calling_temporal(receiver: Receiver) -> None:
    r = await receiver.post(ENDPOINTS["alertmanager"], {**ALERTMANAGER, "alerts": []}, BEARER)
    assert (r.status_code, r.json()) == (202, {"keys": [], "alerts": 0, "opened_or_updated": 0})
    assert receiver.ingest.calls == []


async def test_charset_utf8_is_json(receiver: Receiver) -> None:
    headers = {**BEARER, "Content-Type": "application/json; charset=UTF-8"}
    r = await receiver.http.post(ENDPOINTS["generic"], content=json.dumps(GENERIC).encode(), headers=headers)
    assert r.status_code == 202


# --- PagerDuty Events v2 ------------------------------------------------------------------------------------


async def test_pagerduty_202_as_pagerduty_answers(receiver: Receiver) -> None:
    r = await receiver.post(ENDPOINTS["pagerduty"], PAGERDUTY_TRIGGER)  # no bearer: the routing key is the auth
    assert r.status_code == 202
    assert r.json() == {"status": "success", "message": "Event processed", "dedup_key": "samplekeyhere"}
    (alerts,) = receiver.ingest.calls
    assert alerts[0].dedup_key == "samplekeyhere"


async def test_pagerduty_generated_dedup_key_is_returned_and_reaches_the_same_alert(receiver: Receiver) -> None:
    event = copy.deepcopy(PAGERDUTY_TRIGGER)
    del event["dedup_key"]
    r = await receiver.post(ENDPOINTS["pagerduty"], event)
    key = r.json()["dedup_key"]
    assert r.status_code == 202 and re.fullmatch(r"[0-9a-f]{32}", key)
    resolve = {"routing_key": ROUTING_KEY, "dedup_key": key, "event_action": "resolve"}
    r = await receiver.post(ENDPOINTS["pagerduty"], resolve)
    assert r.json() == {"status": "success", "message": "Event processed", "dedup_key": key}
    trigger, resolved = (call[0] for call in receiver.ingest.calls)
    assert resolved.dedup_key == trigger.dedup_key and resolved.fingerprint == trigger.fingerprint
    assert resolved.status == "resolved"


async def test_pagerduty_acknowledge(receiver: Receiver) -> None:
    ack = {"routing_key": ROUTING_KEY, "dedup_key": "samplekeyhere", "event_action": "acknowledge"}
    r = await receiver.post(ENDPOINTS["pagerduty"], ack)
    assert r.status_code == 202
    assert receiver.ingest.calls[0][0].acknowledge
    assert await receiver.metric("tocsin_alerts_received_total", source="pagerduty", status="acknowledge") == 1


async def test_pagerduty_schema_errors_are_400_as_pagerduty(receiver: Receiver) -> None:
    event = {"routing_key": ROUTING_KEY, "event_action": "trigger", "payload": {"source": "db-1"}}
    r = await receiver.post(ENDPOINTS["pagerduty"], event)
    assert r.status_code == 400
    assert r.json() == {
        "status": "invalid event",
        "message": "Event object is invalid",
        "errors": ["payload.summary: Field required", "payload.severity: Field required"],
    }
    r = await receiver.http.post(
        ENDPOINTS["pagerduty"], content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 400
    assert r.json()["status"] == "invalid event"
    assert r.json()["errors"][0].startswith("body: invalid JSON: ")
    r = await receiver.post(ENDPOINTS["pagerduty"], {**PAGERDUTY_TRIGGER, "routing_key": "too-short"})
    assert r.status_code == 400
    assert r.json()["errors"] == ["routing_key: String should have at least 32 characters"]
    assert receiver.ingest.calls == []


async def test_pagerduty_unknown_routing_key_is_404(receiver: Receiver) -> None:
    r = await receiver.post(ENDPOINTS["pagerduty"], {**PAGERDUTY_TRIGGER, "routing_key": OTHER_KEY})
    assert r.status_code == 404
    assert r.json() == {
        "status": "invalid event",
        "message": "Unknown routing key",
        "errors": ["routing_key: not a configured integration key"],
    }
    # Refused before its schema is looked at: an unknown sender learns nothing more.
    r = await receiver.post(ENDPOINTS["pagerduty"], {"routing_key": OTHER_KEY, "event_action": "snooze"})
    assert r.status_code == 404
    assert receiver.ingest.calls == []
    assert await receiver.metric("tocsin_ingest_rejects_total", source="pagerduty", reason="unknown_routing_key") == 2


async def test_pagerduty_without_configured_keys_refuses_every_key() -> None:
    receiver = Receiver(ReceiverConfig(token=SecretStr(TOKEN)), FakeIngest(), healthy())
    r = await receiver.post(ENDPOINTS["pagerduty"], PAGERDUTY_TRIGGER)
    assert r.status_code == 404
    # The 401 offers only what is configured.
    r = await receiver.post(ENDPOINTS["alertmanager"], ALERTMANAGER)
    assert r.json()["message"] == "missing credentials: send Authorization: Bearer"
    assert r.headers["WWW-Authenticate"] == 'Bearer realm="tocsin"'
    assert receiver.ingest.calls == []


async def test_open_receiver_accepts_any_routing_key(open_receiver: Receiver) -> None:
    r = await open_receiver.post(ENDPOINTS["pagerduty"], {**PAGERDUTY_TRIGGER, "routing_key": OTHER_KEY})
    assert r.status_code == 202


async def test_pagerduty_503(receiver: Receiver) -> None:
    receiver.ingest.error = TemporalUnavailable("Temporal did not accept the alerts: connection refused")
    r = await receiver.post(ENDPOINTS["pagerduty"], PAGERDUTY_TRIGGER)
    assert r.status_code == 503
    assert r.headers["Retry-After"] == "5"
    assert r.json() == {
        "status": "error",
        "message": "Temporal did not accept the alerts: connection refused",
        "errors": ["Temporal did not accept the alerts: connection refused"],
    }


# --- 401 ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "missing credentials: send Authorization: Bearer, or X-Tocsin-Timestamp and X-Tocsin-Signature"),
        ({"Authorization": "Bearer wrong"}, "invalid bearer token"),
        ({"Authorization": f"bearer {TOKEN}x"}, "invalid bearer token"),
        (
            {"Authorization": f"Basic {TOKEN}"},
            "missing credentials: send Authorization: Bearer, or X-Tocsin-Timestamp and X-Tocsin-Signature",
        ),
        ({"X-Tocsin-Signature": "sha256=" + "0" * 64}, "X-Tocsin-Timestamp must be the current time in unix seconds"),
        (
            {"X-Tocsin-Timestamp": "1700000000", "X-Tocsin-Signature": "md5=abc"},
            "X-Tocsin-Signature must be sha256=<64 hex digits>",
        ),
    ],
)
async def test_401_missing_or_wrong_credentials(receiver: Receiver, headers: dict[str, str], message: str) -> None:
    r = await receiver.post(ENDPOINTS["alertmanager"], ALERTMANAGER, headers)
    assert r.status_code == 401
    assert r.json() == {"reason": "unauthorized", "message": message}
    assert r.headers["WWW-Authenticate"].startswith('Bearer realm="tocsin", Tocsin-HMAC-SHA256')
    assert receiver.ingest.calls == []
    assert TOKEN not in r.text and SECRET not in r.text


async def test_hmac_valid(receiver: Receiver) -> None:
    body = json.dumps(GENERIC).encode()
    r = await receiver.http.post(ENDPOINTS["generic"], content=body, headers=signed(body))
    assert r.status_code == 202
    assert len(receiver.ingest.calls) == 1


@pytest.mark.parametrize(
    ("skew", "message"),
    [
        (-301, "X-Tocsin-Timestamp is more than 300 seconds from the receiver's clock"),
        (301, "X-Tocsin-Timestamp is more than 300 seconds from the receiver's clock"),
    ],
)
async def test_hmac_expired_or_from_the_future(receiver: Receiver, skew: int, message: str) -> None:
    body = json.dumps(GENERIC).encode()
    headers = signed(body, timestamp=int(time.time()) + skew)
    r = await receiver.http.post(ENDPOINTS["generic"], content=body, headers=headers)
    assert (r.status_code, r.json()) == (401, {"reason": "unauthorized", "message": message})
    assert receiver.ingest.calls == []


async def test_hmac_within_the_window_both_ways(receiver: Receiver) -> None:
    body = json.dumps(GENERIC).encode()
    for skew in (-290, 290):
        r = await receiver.http.post(
            ENDPOINTS["generic"], content=body, headers=signed(body, timestamp=int(time.time()) + skew)
        )
        assert r.status_code == 202


async def test_hmac_bad_signature(receiver: Receiver) -> None:
    body = json.dumps(GENERIC).encode()
    for headers, content in (
        (signed(body, secret="not-the-secret"), body),
        (signed(body), body.replace(b"billing", b"billinG")),  # body changed after signing
    ):
        r = await receiver.http.post(ENDPOINTS["generic"], content=content, headers=headers)
        assert (r.status_code, r.json()) == (401, {"reason": "unauthorized", "message": "invalid signature"})
    # The timestamp is signed too: moving it invalidates the signature.
    ts = int(time.time())
    headers = {**signed(body, timestamp=ts), "X-Tocsin-Timestamp": str(ts + 1)}
    r = await receiver.http.post(ENDPOINTS["generic"], content=body, headers=headers)
    assert r.status_code == 401
    assert receiver.ingest.calls == []


async def test_per_source_token_overrides_the_shared_one() -> None:
    config = secured(source_tokens={"grafana": SecretStr("grafana-only-token")})
    receiver = Receiver(config, FakeIngest(), healthy())
    r = await receiver.post(ENDPOINTS["grafana"], GRAFANA, BEARER)
    assert r.status_code == 401
    r = await receiver.post(ENDPOINTS["grafana"], GRAFANA, {"Authorization": "Bearer grafana-only-token"})
    assert r.status_code == 202
    r = await receiver.post(ENDPOINTS["alertmanager"], ALERTMANAGER, {"Authorization": "Bearer grafana-only-token"})
    assert r.status_code == 401
    r = await receiver.post(ENDPOINTS["alertmanager"], ALERTMANAGER, BEARER)
    assert r.status_code == 202


async def test_an_endpoint_without_credentials_is_closed_once_anything_is_configured() -> None:
    receiver = Receiver(ReceiverConfig(pagerduty_routing_keys=(SecretStr(ROUTING_KEY),)), FakeIngest(), healthy())
    r = await receiver.post(ENDPOINTS["alertmanager"], ALERTMANAGER)
    assert r.status_code == 401
    r = await receiver.post(ENDPOINTS["alertmanager"], ALERTMANAGER, BEARER)
    assert r.json()["message"] == "bearer tokens are not accepted on this endpoint"
    body = json.dumps(ALERTMANAGER).encode()
    r = await receiver.http.post(ENDPOINTS["alertmanager"], content=body, headers=signed(body))
    assert r.json()["message"] == "signed requests are not accepted on this endpoint"
    assert receiver.ingest.calls == []


async def test_open_receiver_needs_no_credentials(open_receiver: Receiver) -> None:
    r = await open_receiver.post(ENDPOINTS["alertmanager"], ALERTMANAGER)
    assert r.status_code == 202


# --- 413, 415, 422 ------------------------------------------------------------------------------------------


async def test_413_from_content_length_before_reading() -> None:
    receiver = Receiver(secured(max_bytes=100), FakeIngest(), healthy())
    body = json.dumps(ALERTMANAGER).encode()
    assert len(body) > 100
    r = await receiver.http.post(
        ENDPOINTS["alertmanager"], content=body, headers={**BEARER, "Content-Type": "application/json"}
    )
    assert r.status_code == 413
    assert r.json() == {"reason": "too_large", "message": "body: larger than 100 bytes"}
    assert receiver.ingest.calls == []


async def test_413_while_streaming_a_chunked_body() -> None:
    receiver = Receiver(secured(max_bytes=1000), FakeIngest(), healthy())
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"labels": {"alertname": "x", "pad": "'
        for _ in range(50):
            sent += 1
            yield b"a" * 100
        yield b'"}}'

    headers = {**BEARER, "Content-Type": "application/json"}
    r = await receiver.http.post(ENDPOINTS["generic"], content=chunks(), headers=headers)
    assert "content-length" not in r.request.headers  # chunked
    assert r.status_code == 413
    assert receiver.ingest.calls == []


async def test_a_body_at_the_limit_is_accepted() -> None:
    body = json.dumps(GENERIC).encode()
    receiver = Receiver(secured(max_bytes=len(body)), FakeIngest(), healthy())
    r = await receiver.http.post(
        ENDPOINTS["generic"], content=body, headers={**BEARER, "Content-Type": "application/json"}
    )
    assert r.status_code == 202


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1"]
)
async def test_415_wrong_content_type(receiver: Receiver, content_type: str | None) -> None:
    headers = dict(BEARER)
    if content_type:
        headers["Content-Type"] = content_type
    r = await receiver.http.post(ENDPOINTS["generic"], content=json.dumps(GENERIC).encode(), headers=headers)
    assert r.status_code == 415
    assert r.json() == {"reason": "unsupported_media_type", "message": "Content-Type must be application/json"}
    assert receiver.ingest.calls == []


async def test_422_invalid_json(receiver: Receiver) -> None:
    headers = {**BEARER, "Content-Type": "application/json"}
    r = await receiver.http.post(ENDPOINTS["alertmanager"], content=b'{"version": "4",', headers=headers)
    assert r.status_code == 422
    assert r.json() == {
        "reason": "invalid_json",
        "message": "body: invalid JSON: EOF while parsing a value at line 1 column 16",
    }
    for bad in (b"", b"[" * 1000, b'{"a": NaN}', b'"\xff"'):
        r = await receiver.http.post(ENDPOINTS["generic"], content=bad, headers=headers)
        assert (r.status_code, r.json()["reason"]) == (422, "invalid_json")
    assert receiver.ingest.calls == []


async def test_422_names_the_field_path_and_nothing_is_half_applied(receiver: Receiver) -> None:
    alerts = [copy.deepcopy(ALERTMANAGER["alerts"][0]) for _ in range(5)]
    del alerts[3]["labels"]["alertname"]
    r = await receiver.post(ENDPOINTS["alertmanager"], {**ALERTMANAGER, "alerts": alerts}, BEARER)
    assert r.status_code == 422
    assert r.json() == {
        "reason": "invalid_payload",
        "message": "alerts.3.labels.alertname: Field required",
        "errors": ["alerts.3.labels.alertname: Field required"],
    }
    r = await receiver.post(ENDPOINTS["generic"], [GENERIC, {"labels": {"alertname": "x"}, "state": "bad"}], BEARER)
    assert r.json()["errors"] == ["1.state: Extra inputs are not permitted"]
    assert receiver.ingest.calls == []  # four valid alerts arrived with the bad one: none of them was ingested


# --- 503 and failures ---------------------------------------------------------------------------------------


async def test_503_when_temporal_is_unavailable(receiver: Receiver) -> None:
    receiver.ingest.error = TemporalUnavailable("Temporal did not accept the alerts: deadline exceeded")
    r = await receiver.post(ENDPOINTS["alertmanager"], ALERTMANAGER, BEARER)
    assert r.status_code == 503
    assert r.headers["Retry-After"] == "5"
    assert r.json() == {
        "reason": "temporal_unavailable",
        "message": "Temporal did not accept the alerts: deadline exceeded",
    }
    assert (
        await receiver.metric("tocsin_ingest_rejects_total", source="alertmanager", reason="temporal_unavailable") == 1
    )
    assert await receiver.metric("tocsin_alerts_received_total", source="alertmanager", status="firing") == 0


async def test_an_ingest_bug_is_a_json_500_and_logged(receiver: Receiver, caplog: pytest.LogCaptureFixture) -> None:
    receiver.ingest.error = KeyError("policy")
    with caplog.at_level(logging.ERROR, logger="tocsin.receiver"):
        r = await receiver.post(ENDPOINTS["generic"], GENERIC, BEARER)
    assert r.status_code == 500
    assert r.json() == {
        "reason": "internal_error",
        "message": "the receiver failed to ingest the alerts; see its log",
    }
    assert "KeyError" in caplog.text


# --- healthz, metrics, OpenAPI ------------------------------------------------------------------------------


async def test_healthz_both_ways() -> None:
    async def raises() -> bool:
        raise RuntimeError("connection refused")

    async def hangs() -> bool:
        await asyncio.sleep(10)
        return True

    for check, status in ((healthy(True), 200), (healthy(False), 503), (raises, 503), (hangs, 503)):
        receiver = Receiver(ReceiverConfig(health_timeout=0.05), FakeIngest(), check)
        r = await receiver.http.get("/healthz")
        assert r.status_code == status
        expected = (
            {"status": "ok", "temporal": "reachable"}
            if status == 200
            else {
                "status": "unavailable",
                "temporal": "unreachable",
            }
        )
        assert r.json() == expected


async def test_metrics_move(receiver: Receiver) -> None:
    assert await receiver.metric("tocsin_alerts_received_total", source="alertmanager", status="firing") == 0
    await receiver.post(ENDPOINTS["alertmanager"], ALERTMANAGER, BEARER)
    await receiver.post(ENDPOINTS["alertmanager"], ALERTMANAGER, BEARER)
    await receiver.post(ENDPOINTS["alertmanager"], ALERTMANAGER)  # 401
    await receiver.post(ENDPOINTS["generic"], {"labels": {}}, BEARER)  # 422
    assert await receiver.metric("tocsin_alerts_received_total", source="alertmanager", status="firing") == 2
    assert await receiver.metric("tocsin_alerts_received_total", source="alertmanager", status="resolved") == 2
    assert await receiver.metric("tocsin_incidents_reached_total", source="alertmanager") == 2
    assert await receiver.metric("tocsin_ingest_rejects_total", source="alertmanager", reason="unauthorized") == 1
    assert await receiver.metric("tocsin_ingest_rejects_total", source="generic", reason="invalid_payload") == 1
    route = ENDPOINTS["alertmanager"]
    count = "tocsin_http_request_duration_seconds_count"
    assert await receiver.metric(count, method="POST", route=route, status="202") == 2
    assert await receiver.metric(count, method="POST", route=route, status="401") == 1
    # Unknown paths share one label value: clients cannot mint series.
    await receiver.http.get("/no/such/path")
    assert await receiver.metric(count, method="GET", route="unmatched", status="404") == 1


async def test_each_app_has_its_own_registry() -> None:
    first = Receiver(ReceiverConfig(), FakeIngest(), healthy())
    second = Receiver(ReceiverConfig(), FakeIngest(), healthy())
    await first.post(ENDPOINTS["generic"], GENERIC)
    assert await first.metric("tocsin_alerts_received_total", source="generic", status="firing") == 1
    assert await second.metric("tocsin_alerts_received_total", source="generic", status="firing") == 0


async def test_openapi_document(receiver: Receiver) -> None:
    r = await receiver.http.get("/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    for path in ENDPOINTS.values():
        assert "requestBody" in doc["paths"][path]["post"]
    assert set(doc["paths"]) >= {"/healthz", "/metrics"}
    # Every $ref resolves inside the document.
    refs = set(re.findall(r'"\$ref":\s*"#/components/schemas/([^"]+)"', r.text))
    assert refs and refs <= set(doc["components"]["schemas"])
    am = doc["paths"][ENDPOINTS["alertmanager"]]["post"]
    assert set(am["responses"]) == {"202", "401", "413", "415", "422", "500", "503"}
    pagerduty = set(doc["paths"][ENDPOINTS["pagerduty"]]["post"]["responses"])
    assert pagerduty == {"202", "400", "404", "413", "415", "500", "503"}


# --- Properties: nothing a client sends makes a 5xx, an exception, or a half-ingested payload -----------------


def run(coro: Awaitable[None]) -> None:
    # Hypothesis drives sync tests; each example gets a private loop (never the suite's).
    async def main() -> None:
        await coro

    with asyncio.Runner(loop_factory=asyncio.new_event_loop) as runner:
        runner.run(main())


PROPERTY_INGEST = FakeIngest()
PROPERTY_APP = create_app(ingest=PROPERTY_INGEST, healthcheck=healthy(), config=secured())


def post_anything(
    caplog: pytest.LogCaptureFixture, path: str, content: bytes, headers: dict[str, str]
) -> tuple[httpx.Response, list[list[NormalizedAlert]]]:
    """Post on one shared app (a fresh client per example); the answer, and what reached ingest."""
    PROPERTY_INGEST.calls.clear()
    caplog.clear()
    answers: list[httpx.Response] = []

    async def go() -> None:
        transport = httpx.ASGITransport(app=PROPERTY_APP)
        async with httpx.AsyncClient(transport=transport, base_url="http://receiver") as http:
            answers.append(await http.post(path, content=content, headers=headers))

    run(go())
    (r,) = answers
    assert r.status_code in (202, 400, 401, 404, 413, 415, 422), r.text
    json.loads(r.text)  # always a JSON answer
    if r.status_code != 202:
        assert PROPERTY_INGEST.calls == []
    assert not [rec for rec in caplog.records if rec.levelno >= logging.ERROR or rec.exc_info]
    return r, PROPERTY_INGEST.calls


bodies = json_values.map(lambda v: json.dumps(v).encode()) | st.binary(max_size=200)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(list(ENDPOINTS.values())), body=bodies)
def test_any_body_never_5xx(caplog: pytest.LogCaptureFixture, path: str, body: bytes) -> None:
    post_anything(caplog, path, body, {"Content-Type": "application/json", **BEARER})


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    path=st.sampled_from(list(ENDPOINTS.values())),
    body=bodies,
    headers=st.dictionaries(
        st.sampled_from(["Authorization", "X-Tocsin-Timestamp", "X-Tocsin-Signature", "Content-Type"]),
        st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=80),
    ),
)
def test_any_headers_never_5xx(
    caplog: pytest.LogCaptureFixture, path: str, body: bytes, headers: dict[str, str]
) -> None:
    post_anything(caplog, path, body, headers)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    alerts=st.lists(
        st.fixed_dictionaries(
            {
                "status": st.sampled_from(["firing", "resolved"]),
                "labels": st.just({"alertname": "A", "service": "s"}) | json_values,
            },
            optional={"fingerprint": st.text(max_size=10) | json_values, "startsAt": json_values},
        ),
        max_size=5,
    )
)
def test_alertmanager_payloads_are_all_or_nothing(caplog: pytest.LogCaptureFixture, alerts: list[Any]) -> None:
    body = json.dumps({**ALERTMANAGER, "alerts": alerts}).encode()
    r, calls = post_anything(caplog, ENDPOINTS["alertmanager"], body, {"Content-Type": "application/json", **BEARER})
    if r.status_code == 202:
        assert sum(len(c) for c in calls) == len(alerts) == r.json()["alerts"]
    else:
        assert r.status_code == 422 and calls == []


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    event=st.fixed_dictionaries(
        {
            "routing_key": st.sampled_from([ROUTING_KEY, OTHER_KEY, "short"]),
            "event_action": st.sampled_from(["trigger", "acknowledge", "resolve", "snooze"]),
        },
        optional={
            "dedup_key": st.text(max_size=20) | json_values,
            "payload": st.just(PAGERDUTY_TRIGGER["payload"]) | json_values,
        },
    )
)
def test_pagerduty_events_answer_as_pagerduty(caplog: pytest.LogCaptureFixture, event: dict[str, Any]) -> None:
    content = json.dumps(event).encode()
    r, calls = post_anything(caplog, ENDPOINTS["pagerduty"], content, {"Content-Type": "application/json"})
    body = r.json()
    if r.status_code == 202:
        assert event["routing_key"] == ROUTING_KEY
        assert body["status"] == "success" and body["dedup_key"] == calls[0][0].dedup_key
    else:
        assert r.status_code in (400, 404) and body["status"] == "invalid event" and body["errors"]
        assert r.status_code == 400 or event["routing_key"] == OTHER_KEY


# --- Settings and serving -----------------------------------------------------------------------------------


def test_config_from_env_and_files(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    keys_file = tmp_path / "keys"
    keys_file.write_text(f"# integration keys\n{ROUTING_KEY}\n\n{OTHER_KEY}  # staging\n")
    config = load_receiver_config(
        {
            "TOCSIN_INGEST_TOKEN_FILE": str(token_file),
            "TOCSIN_INGEST_HMAC_SECRET": SECRET,
            "TOCSIN_INGEST_TOKEN_GRAFANA": "g",
            "TOCSIN_PAGERDUTY_ROUTING_KEYS_FILE": str(keys_file),
            "TOCSIN_INGEST_MAX_BYTES": "2048",
        }
    )
    assert config.token is not None and config.token.get_secret_value() == TOKEN
    assert config.credentials("grafana").token == SecretStr("g")
    assert config.credentials("alertmanager").token == SecretStr(TOKEN)
    assert [k.get_secret_value() for k in config.pagerduty_routing_keys] == [ROUTING_KEY, OTHER_KEY]
    assert config.max_bytes == 2048
    assert not config.open
    assert TOKEN not in repr(config) and SECRET not in repr(config)
    assert TOKEN not in config.describe()
    assert load_receiver_config({}).open
    assert load_receiver_config({"TOCSIN_INGEST_TOKEN": ""}).open  # set but empty is unset


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"TOCSIN_INGEST_TOKEN": "a", "TOCSIN_INGEST_TOKEN_FILE": "/x"},
            "set TOCSIN_INGEST_TOKEN or TOCSIN_INGEST_TOKEN_FILE, not both",
        ),
        ({"TOCSIN_INGEST_HMAC_SECRET_FILE": "/nonexistent/secret"}, "TOCSIN_INGEST_HMAC_SECRET_FILE: cannot read"),
        ({"TOCSIN_PAGERDUTY_ROUTING_KEYS": "abc"}, "key 1 has 3 characters"),
        ({"TOCSIN_INGEST_MAX_BYTES": "1MB"}, "TOCSIN_INGEST_MAX_BYTES='1MB' is not a positive number of bytes"),
    ],
)
def test_config_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(ReceiverConfigError, match=re.escape(message)) as caught:
        load_receiver_config(env)
    assert "abc" not in str(caught.value)  # the error names the variable, never the value


def test_an_open_receiver_listens_on_loopback_only() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.com")
    public = load_settings({"TOCSIN_HTTP_HOST": "0.0.0.0", "TOCSIN_HTTP_PORT": "8080"})
    with pytest.raises(ReceiverError, match=re.escape("TOCSIN_HTTP_HOST=0.0.0.0 needs credentials")):
        bind(public, ReceiverConfig())
    listener = bind(load_settings({"TOCSIN_HTTP_HOST": "0.0.0.0"}).model_copy(update={"http_port": 0}), secured())
    try:
        assert listener.url.startswith("http://0.0.0.0:")
    finally:
        listener.sock.close()
    line = announce(listener, ReceiverConfig())
    assert "unauthenticated, listening on loopback only" in line


def test_a_busy_port_is_one_clear_error() -> None:
    settings_ = load_settings({}).model_copy(update={"http_port": 0})
    first = bind(settings_, ReceiverConfig())
    try:
        taken = load_settings({}).model_copy(update={"http_port": first.sock.getsockname()[1]})
        first.sock.listen()
        with pytest.raises(ReceiverError, match=re.escape("cannot listen on 127.0.0.1")):
            bind(taken, ReceiverConfig())
    finally:
        first.sock.close()


async def test_served_by_uvicorn_and_stopped_by_the_stop_event() -> None:
    ingest = FakeIngest()
    app = create_app(ingest=ingest, healthcheck=healthy(), config=secured())
    async with serving(app, secured()) as (http, listener):
        assert (await http.get("/healthz")).status_code == 200
        r = await http.post(ENDPOINTS["generic"], json=GENERIC, headers=BEARER)
        assert r.status_code == 202

        # A real chunked upload over the limit is cut off with 413 too.
        async def big() -> AsyncIterator[bytes]:
            yield b"[" + b" " * 600_000
            yield b" " * 600_000 + b"]"

        r = await http.post(
            ENDPOINTS["generic"],
            content=big(),
            headers={**BEARER, "Content-Type": "application/json"},
        )
        assert r.status_code == 413
    assert len(ingest.calls) == 1
    assert listener.sock.fileno() == -1  # closed
