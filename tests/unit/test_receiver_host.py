"""The open receiver's Host check (DNS rebinding): a request addressed to any name but a loopback one is refused
with 421 and a Problem before anything else runs; loopback names pass; with credentials there is no check."""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from tests.support.receiver_socket import serving
from tests.unit.test_receiver import GENERIC, FakeIngest, healthy
from tocsin.receiver.app import ENDPOINTS, create_app
from tocsin.receiver.config import ReceiverConfig
from tocsin.receiver.host_check import loopback_host

TOKEN = "host-check-token-0123456789abcdef"
PATHS = [("POST", ENDPOINTS["generic"]), ("POST", ENDPOINTS["pagerduty"]), ("GET", "/healthz"), ("GET", "/metrics")]
PATHS += [("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/nowhere")]


@pytest.mark.parametrize(
    "host",
    ["localhost", "localhost:8080", "LocalHost:1", "127.0.0.1", "127.0.0.1:8080", "127.0.0.2", "[::1]", "[::1]:80"],
)
def test_loopback_names_and_addresses_with_any_port(host: str) -> None:
    assert loopback_host(host)


@pytest.mark.parametrize(
    "host",
    [
        None,
        "",
        "evil.example",
        "evil.example:8080",
        "localhost.evil.example",  # a name the attacker's DNS answers
        "127.0.0.1.nip.io:8080",
        "0.0.0.0:8080",
        "10.0.0.7",
        "::1",  # unbracketed: not a Host
        "[::1]x",
        "localhost:",
        "localhost:8080:80",
        "localhost/",
        "local host",
    ],
)
def test_every_other_host_is_refused(host: str | None) -> None:
    assert not loopback_host(host)


def client(app: Any, host: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{host}")


async def test_an_open_receiver_refuses_a_foreign_host_before_anything_else(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="tocsin.receiver")
    ingest = FakeIngest()
    app = create_app(ingest=ingest, healthcheck=healthy(), config=ReceiverConfig())
    async with client(app, "rebound.evil.example:8080") as http:
        for method, path in PATHS:
            r = await http.request(method, path, json=GENERIC)
            assert r.status_code == 421, path
            assert r.json()["reason"] == "misdirected_host"
            assert "localhost, 127.0.0.1 or [::1]" in r.json()["message"]
    assert ingest.calls == [], "nothing reached the gate"
    assert "Host ['rebound.evil.example:8080']" in caplog.text
    # The same app, addressed by a loopback name: everything as usual, and the refusals were not even counted.
    async with client(app, "localhost:8080") as http:
        assert (await http.post(ENDPOINTS["generic"], json=GENERIC)).status_code == 202
        assert (await http.get("/healthz")).status_code == 200
        metrics = (await http.get("/metrics")).text
    assert len(ingest.calls) == 1
    assert 'status="421"' not in metrics


async def test_one_host_header_exactly() -> None:
    app = create_app(ingest=FakeIngest(), healthcheck=healthy(), config=ReceiverConfig())
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    for headers in ([], [(b"host", b"localhost"), (b"host", b"evil.example")]):
        sent.clear()
        scope = {"type": "http", "method": "GET", "path": "/healthz", "headers": headers, "query_string": b""}
        await app({**scope, "asgi": {"version": "3.0"}, "http_version": "1.1", "scheme": "http"}, receive, send)
        assert sent[0]["status"] == 421, headers


async def test_with_credentials_any_host_is_served() -> None:
    ingest = FakeIngest()
    app = create_app(ingest=ingest, healthcheck=healthy(), config=ReceiverConfig(token=SecretStr(TOKEN)))
    async with client(app, "tocsin-receiver:8080") as http:
        assert (await http.post(ENDPOINTS["generic"], json=GENERIC)).status_code == 401
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        assert (await http.post(ENDPOINTS["generic"], json=GENERIC, headers=bearer)).status_code == 202
    assert len(ingest.calls) == 1


async def test_a_rebound_name_on_the_real_socket_is_refused() -> None:
    """What a browser does after DNS rebinding: it connects to 127.0.0.1 and sends the attacker's name."""
    ingest = FakeIngest()
    app = create_app(ingest=ingest, healthcheck=healthy(), config=ReceiverConfig())
    async with serving(app, ReceiverConfig()) as (http, listener):
        assert (await http.get("/healthz")).status_code == 200, "addressed as 127.0.0.1:<port>"
        rebound = {
            "Host": f"attacker.example:{listener.url.rsplit(':', 1)[1]}",
            "Origin": "http://attacker.example",
        }
        r = await http.post(ENDPOINTS["generic"], json=GENERIC, headers=rebound)
        assert r.status_code == 421 and r.json()["reason"] == "misdirected_host"
        r = await http.post(ENDPOINTS["generic"], json=GENERIC, headers={"Host": "localhost"})
        assert r.status_code == 202
    assert len(ingest.calls) == 1
