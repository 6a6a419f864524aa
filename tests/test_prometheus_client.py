"""Tocsin's one Prometheus client (tocsin/prometheus.py), against a real Prometheus behind basic auth.

Prometheus 2.42 (Debian's package) needs no scrape target here: `time()`, `vector()` and `label_replace()`
answer from nothing, so the server is ready as soon as it listens. What a real server will not do on demand
(a 503 with Retry-After, a 429, an answer too slow, a page that is not its API) is played by a loopback
server (tests/vendor_server.py) speaking its HTTP API.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.promstack import Process, free_port, system_binary, wait_http
from tests.vendor_fakes import closed_port
from tests.vendor_server import Reply, VendorServer
from tocsin.prometheus import Instant, Prometheus, PrometheusError, Scalar, Series

PASSWORD = "pa55word"
# bcrypt (cost 4, to keep each request cheap) of PASSWORD, as Prometheus' web config wants it.
PASSWORD_HASH = "$2b$04$l7nS7m6xGwMOu9DVfpa2reohf6Il7mPq6I01H6euv5MExSct.h4mG"


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The address of a real Prometheus that asks for user `tocsin` with PASSWORD (the URL has no credentials)."""
    home = tmp_path_factory.mktemp("prometheus-client")
    (home / "prometheus.yml").write_text("global: {evaluation_interval: 1m}\n")
    (home / "web.yml").write_text(f"basic_auth_users:\n  tocsin: '{PASSWORD_HASH}'\n")
    port = free_port()
    process = Process(
        [
            system_binary("prometheus"),
            f"--config.file={home / 'prometheus.yml'}",
            f"--web.config.file={home / 'web.yml'}",
            f"--storage.tsdb.path={home / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        home / "prometheus.log",
    )
    url = f"http://127.0.0.1:{port}"
    try:
        # /-/healthy is behind the same auth: a 401 would never be ready, so ask with the credentials.
        wait_http(f"http://tocsin:{PASSWORD}@127.0.0.1:{port}/-/ready", process)
        yield url
    finally:
        process.stop()


def signed_in(url: str, password: str = PASSWORD) -> str:
    return url.replace("http://", f"http://tocsin:{password}@")


@pytest.fixture
def server() -> Iterator[VendorServer]:
    with VendorServer() as running:
        yield running


# --- a real Prometheus ----------------------------------------------------------------------------------


async def test_an_instant_vector_keeps_every_label(prometheus: str) -> None:
    query = 'label_replace(vector(0.5), "service", "checkout", "", "")'
    answer = await Prometheus(signed_in(prometheus)).instant(query)
    assert answer == [Instant(labels={"service": "checkout"}, value="0.5")]


async def test_a_scalar_at_a_given_time(prometheus: str) -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    assert await Prometheus(signed_in(prometheus)).instant("time()", at) == Scalar(value=str(round(at.timestamp())))


async def test_a_range_is_points_in_time_order(prometheus: str) -> None:
    end = datetime.now(UTC).replace(microsecond=0)
    start = end - timedelta(minutes=2)
    [series] = await Prometheus(signed_in(prometheus)).range("vector(1)", start, end, 60)
    assert series == Series(labels={}, points=[(start + timedelta(minutes=n), 1.0) for n in range(3)])


async def test_a_refused_query_is_permanent_in_prometheus_own_words(prometheus: str) -> None:
    with pytest.raises(PrometheusError) as refused:
        await Prometheus(signed_in(prometheus)).instant("sum(up}")
    assert not refused.value.retryable
    assert str(refused.value).startswith(f"Prometheus at {prometheus} answered 400: bad_data: ")


async def test_a_range_vector_is_no_instant(prometheus: str) -> None:
    with pytest.raises(PrometheusError, match="must return an instant vector or a scalar") as refused:
        await Prometheus(signed_in(prometheus)).instant("vector(1)[5m:1m]")
    assert not refused.value.retryable


async def test_credentials_are_sent_and_never_shown(prometheus: str) -> None:
    for url in (prometheus, signed_in(prometheus, "wr0ng-pa55")):
        with pytest.raises(PrometheusError) as refused:
            await Prometheus(url).instant("vector(1)")
        # A 4xx: asking again with the same credentials is refused again.
        assert str(refused.value) == f"Prometheus at {prometheus} answered 401" and not refused.value.retryable
        assert "wr0ng" not in str(refused.value) and "tocsin@" not in str(refused.value)


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
