"""`POST /api/v1/heartbeats/<name>` against a recording fake ping: declared 202, undeclared 404, the generic
endpoint's credentials (401 without them), 503 when Temporal is unreachable, and the policy section's checks."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import yaml
from pydantic import SecretStr, ValidationError

from tocsin.intake.contracts import IngestResult, NormalizedAlert, TemporalUnavailable
from tocsin.policy.heartbeats import Heartbeat
from tocsin.policy.schema import LOADING, Policy
from tocsin.receiver.app import create_app
from tocsin.receiver.config import ReceiverConfig
from tocsin.receiver.heartbeat_routes import HeartbeatReceiver

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "t0ken-for-tests-0123456789abcdef"
BEAT = Heartbeat(interval=timedelta(minutes=1), grace=timedelta(seconds=30), service="monitoring", severity="sev2")


class FakePing:
    def __init__(self, error: BaseException | None = None) -> None:
        self.calls: list[tuple[str, Heartbeat]] = []
        self.error = error

    async def __call__(self, name: str, beat: Heartbeat) -> None:
        if self.error is not None:
            raise self.error
        self.calls.append((name, beat))


async def no_ingest(alerts: list[NormalizedAlert]) -> IngestResult:
    raise AssertionError("a ping ingests no alerts")


async def healthy() -> bool:
    return True


def client(ping: FakePing, config: ReceiverConfig | None = None) -> httpx.AsyncClient:
    heartbeats = HeartbeatReceiver(declared={"prometheus-watchdog": BEAT}, ping=ping)
    app = create_app(ingest=no_ingest, healthcheck=healthy, config=config, heartbeats=heartbeats)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost")


async def test_declared_heartbeat_is_pinged() -> None:
    ping = FakePing()
    async with client(ping) as http:
        answer = await http.post("/api/v1/heartbeats/prometheus-watchdog", json={})
    assert answer.status_code == 202
    assert ping.calls == [("prometheus-watchdog", BEAT)]


async def test_undeclared_heartbeat_is_404() -> None:
    ping = FakePing()
    async with client(ping) as http:
        answer = await http.post("/api/v1/heartbeats/no-such-beat", json={})
    assert answer.status_code == 404
    assert answer.json()["reason"] == "unknown_heartbeat"
    assert ping.calls == []


async def test_credentials_of_the_generic_endpoint_are_required() -> None:
    ping = FakePing()
    async with client(ping, ReceiverConfig(token=SecretStr(TOKEN))) as http:
        refused = await http.post("/api/v1/heartbeats/prometheus-watchdog", json={})
        wrong = await http.post(
            "/api/v1/heartbeats/prometheus-watchdog", json={}, headers={"Authorization": "Bearer wrong"}
        )
        accepted = await http.post(
            "/api/v1/heartbeats/prometheus-watchdog", json={}, headers={"Authorization": f"Bearer {TOKEN}"}
        )
    assert (refused.status_code, wrong.status_code, accepted.status_code) == (401, 401, 202)
    assert len(ping.calls) == 1


async def test_temporal_unreachable_is_503_with_retry_after() -> None:
    ping = FakePing(TemporalUnavailable("connection refused"))
    async with client(ping) as http:
        answer = await http.post("/api/v1/heartbeats/prometheus-watchdog", json={})
    assert answer.status_code == 503
    assert answer.headers["Retry-After"]


def _policy_with(heartbeats: object) -> Policy:
    data = yaml.safe_load((ROOT / "policies" / "default.yaml").read_text(encoding="utf-8"))
    data["heartbeats"] = heartbeats
    return Policy.model_validate(data, context=LOADING)


def test_policy_section_parses_the_issue_example() -> None:
    policy = _policy_with(
        {
            "prometheus-watchdog": {
                "interval": "1 minute",
                "grace": "30 seconds",
                "service": "monitoring",
                "severity": "sev2",
            }
        }
    )
    assert policy.heartbeats["prometheus-watchdog"].deadline == timedelta(seconds=90)


@pytest.mark.parametrize(
    ("beat", "words"),
    [
        ({"interval": "1 minute", "service": "monitoring", "severity": "sev9"}, "unknown severity"),
        ({"interval": "1 second", "service": "monitoring"}, "interval must be between"),
        ({"interval": "1 minute", "grace": "2 days", "service": "monitoring"}, "grace must be between"),
        ({"interval": "1 minute", "service": "has space"}, "service"),
        ({"interval": "1 minute", "service": "monitoring", "colour": "red"}, "colour"),
    ],
)
def test_policy_section_is_strict(beat: dict[str, str], words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        _policy_with({"watchdog": beat})


def test_heartbeat_name_must_fit_a_url_and_workflow_id() -> None:
    with pytest.raises(ValidationError, match="heartbeats"):
        _policy_with({"Bad/Name": {"interval": "1 minute", "service": "monitoring"}})
