"""Tocsin's one Prometheus client (tocsin/prometheus.py), for what a real server will not do on demand (a 503
with Retry-After, a 429, an answer too slow, a page that is not its API), played by a loopback server
(tests/support/vendor_server.py) speaking its HTTP API; and its configuration. Against a real Prometheus:
tests/integration/test_prometheus_client_real.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support.vendor_fakes import closed_port
from tests.support.vendor_server import Reply, VendorServer
from tocsin.prometheus import Prometheus, PrometheusError

PASSWORD = "pa55word"


def signed_in(url: str, password: str = PASSWORD) -> str:
    return url.replace("http://", f"http://tocsin:{password}@")


@pytest.fixture
def server() -> Iterator[VendorServer]:
    with VendorServer() as running:
        yield running


# --- what a real server will not do on demand -----------------------------------------------------------


async def test_an_unreachable_prometheus_is_retryable_and_shows_no_credentials() -> None:
    port = closed_port()
    with pytest.raises(PrometheusError) as failed:
        await Prometheus(f"http://tocsin:{PASSWORD}@127.0.0.1:{port}/prom?token=t0k").instant("up")
    assert failed.value.retryable and failed.value.retry_after is None
    assert str(failed.value) == f"Prometheus at http://127.0.0.1:{port}/prom unreachable (connection refused or failed)"


@pytest.mark.parametrize("status", [500, 502, 503, 408, 429])
async def test_a_5xx_408_or_429_is_retryable_after_the_wait_asked_for(server: VendorServer, status: int) -> None:
    server.on("GET", "/api/v1/query", Reply(status, body="busy", headers={"Retry-After": "7"}))
    with pytest.raises(PrometheusError) as failed:
        await Prometheus(signed_in(server.url)).instant("up")
    assert failed.value.retryable and failed.value.retry_after == 7.0
    assert str(failed.value) == f"Prometheus at {server.url} answered {status}" and PASSWORD not in str(failed.value)
    assert server.requests[0].headers["authorization"].startswith("Basic "), "sent, though never shown"
    assert len(server.requests) == 1, "no retries of its own: each attempt is Temporal's"


async def test_no_answer_in_time_is_retryable(server: VendorServer) -> None:
    server.on("GET", "/api/v1/query", Reply(json={"status": "success", "data": {"result": []}}, delay=10))
    with pytest.raises(PrometheusError, match=r"gave no answer within 3s$") as failed:
        await Prometheus(server.url).instant("up", query_timeout=0.5)
    assert failed.value.retryable
    assert server.requests[0].query["timeout"] == ["0.5"], "Prometheus is told how long it may evaluate"


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        (Reply(body="<html>sign in</html>"), "answered with something that is not JSON"),
        (Reply(json={"status": "success"}), "answered with something that is not its API (KeyError)"),
    ],
)
async def test_an_answer_that_is_not_prometheus_is_permanent(server: VendorServer, reply: Reply, problem: str) -> None:
    server.on("GET", "/api/v1/query_range", reply)
    now = datetime.now(UTC)
    with pytest.raises(PrometheusError) as failed:
        await Prometheus(server.url).range("up", now - timedelta(minutes=5), now, 60)
    assert not failed.value.retryable and problem in str(failed.value)


def test_from_the_environment(tmp_path: Path) -> None:
    assert Prometheus.from_env({}) is None
    secret = tmp_path / "url"
    secret.write_text(f"http://tocsin:{PASSWORD}@127.0.0.1:9090/\n")
    prometheus = Prometheus.from_env({"TOCSIN_PROMETHEUS_URL_FILE": str(secret)})
    assert prometheus is not None and prometheus.where == "Prometheus at http://127.0.0.1:9090"
    with pytest.raises(ValueError, match="TOCSIN_PROMETHEUS_URL: expected an http") as bad:
        Prometheus.from_env({"TOCSIN_PROMETHEUS_URL": f"tocsin:{PASSWORD}@prom:9090"})
    assert PASSWORD not in str(bad.value)
