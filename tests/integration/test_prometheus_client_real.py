"""Tocsin's one Prometheus client (tocsin/prometheus.py), against a real Prometheus behind basic auth.

Prometheus 2.42 (Debian's package) needs no scrape target here: `time()`, `vector()` and `label_replace()`
answer from nothing, so the server is ready as soon as it listens. What a real server will not do on demand is
played by a loopback server in tests/unit/test_prometheus_client.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.promstack import Process, free_port, system_binary, wait_http
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
