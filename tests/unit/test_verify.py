"""The `verify` step: conditions, one answer judged, a run of checks judged, and Prometheus' HTTP API on loopback."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.vendor_server import Recorded, Reply, VendorServer
from tocsin.runbook.errors import PermanentRemediationError, RetryableRemediationError
from tocsin.runbook.plan_contracts import PlannedVerify
from tocsin.runbook.thresholds import Threshold, normalise_threshold, parse_threshold
from tocsin.runbook.verify import (
    Sample,
    VerifyCheck,
    VerifyOutcome,
    VerifyProgress,
    advance,
    evaluate,
)
from tocsin.runbook.verify_query import query_prometheus

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


# --- conditions -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("< 0.05", Threshold("<", 0.05)),
        ("<0.05", Threshold("<", 0.05)),
        ("< 5%", Threshold("<", 0.05)),
        (">= 99.5%", Threshold(">=", 0.995)),
        ("== 0", Threshold("==", 0)),
        ("!= 1", Threshold("!=", 1)),
        ("> -1e3", Threshold(">", -1000)),
    ],
)
def test_conditions(text: str, parsed: Threshold) -> None:
    found = parse_threshold(text)
    assert found.op == parsed.op and found.value == pytest.approx(parsed.value)


@pytest.mark.parametrize("text", ["0.05", "< ", "below 0.05", "=< 1", "< 1 and > 0", "< inf", "< nan"])
def test_bad_conditions(text: str) -> None:
    with pytest.raises(ValueError, match="is not a comparator and a number"):
        parse_threshold(text)


def test_condition_is_normalised_for_the_plan() -> None:
    assert normalise_threshold("<5%") == "< 0.05"


# --- one answer -----------------------------------------------------------------------------------------


def _samples(*values: str) -> list[Sample]:
    return [Sample(labels={"service": f"s{i}"}, value=v) for i, v in enumerate(values)]


def test_every_series_must_meet_the_condition() -> None:
    assert evaluate("< 0.05", _samples("0.01", "0.049")) == VerifyCheck(
        held=True, detail="service=s0: 0.01; service=s1: 0.049 (< 0.05)"
    )
    check = evaluate("< 0.05", _samples("0.01", "0.2"))
    assert not check.held and check.detail == "service=s1: 0.2 (not < 0.05)"


@pytest.mark.parametrize("value", ["NaN", "+Inf", "garbage"])
def test_nan_and_infinity_are_no_evidence_of_health(value: str) -> None:
    assert not evaluate("< 0.05", _samples(value)).held


def test_no_data_fails_unless_the_step_says_it_passes() -> None:
    assert evaluate("< 0.05", []) == VerifyCheck(held=False, detail="no data (not held)")
    assert evaluate("< 0.05", [], no_data="pass").held


def test_a_long_answer_names_the_first_failing_series() -> None:
    check = evaluate("> 0", _samples(*["0"] * 8))
    assert check.detail.endswith("service=s4: 0 and 3 more (not > 0)")


# --- a run of checks ------------------------------------------------------------------------------------


def _step(hold: int = 5, timeout: int = 15) -> PlannedVerify:
    return PlannedVerify(
        name="error_rate_recovered",
        timeout=timedelta(minutes=timeout),
        query="up",
        condition="< 0.05",
        hold_for=timedelta(minutes=hold),
        interval=timedelta(minutes=1),
    )


def _run(step: PlannedVerify, held: list[bool]) -> list[VerifyOutcome]:
    """Check once a minute from T0; the outcome after each check."""
    progress, outcomes = VerifyProgress(started_at=T0), list[VerifyOutcome]()
    for minute, ok in enumerate(held):
        progress, outcome = advance(step, progress, VerifyCheck(held=ok, detail=""), T0 + timedelta(minutes=minute))
        outcomes.append(outcome)
        if outcome != "pending":
            break
    return outcomes


def test_passes_once_the_condition_held_for_the_whole_duration() -> None:
    # Held from minute 2 on: passes at minute 7, after five minutes of holding.
    assert _run(_step(), [False, False] + [True] * 10) == ["pending"] * 7 + ["passed"]


def test_a_relapse_starts_the_hold_again() -> None:
    outcomes = _run(_step(), [True, True, True, False] + [True] * 10)
    assert outcomes[-1] == "passed" and len(outcomes) == 4 + 6


def test_fails_as_soon_as_it_can_no_longer_hold_long_enough() -> None:
    # 15 minutes to hold for 5: not holding at minute 11 means it could pass at 16 at the earliest.
    outcomes = _run(_step(), [False] * 20)
    assert outcomes == ["pending"] * 11 + ["failed"]
    # Holding from minute 10 exactly still passes at 15, the deadline.
    assert _run(_step(), [False] * 10 + [True] * 10)[-1] == "passed"


def test_without_a_duration_the_first_good_answer_passes() -> None:
    assert _run(_step(hold=0, timeout=3), [False, True]) == ["pending", "passed"]
    assert _run(_step(hold=0, timeout=3), [False] * 5) == ["pending"] * 3 + ["failed"]


def test_progress_records_the_last_check() -> None:
    progress, _ = advance(_step(), VerifyProgress(started_at=T0), VerifyCheck(held=True, detail="x: 0.01"), T0)
    assert (progress.checks, progress.held_since, progress.last) == (1, T0, "x: 0.01")


# --- Prometheus' HTTP API -------------------------------------------------------------------------------


@pytest.fixture
def prometheus() -> Iterator[VendorServer]:
    with VendorServer() as running:
        yield running


def _vector(*series: tuple[dict[str, str], str]) -> Reply:
    result = [{"metric": labels, "value": [1772366400.0, value]} for labels, value in series]
    return Reply(json={"status": "success", "data": {"resultType": "vector", "result": result}})


async def test_queries_prometheus(prometheus: VendorServer) -> None:
    prometheus.on("GET", "/api/v1/query", _vector(({"service": "checkout"}, "0.012")))
    query = 'sum(rate(http_requests_total{service="checkout",code=~"5.."}[5m]))'
    samples = await query_prometheus(prometheus.url, query, query_timeout=5)
    assert samples == [Sample(labels={"service": "checkout"}, value="0.012")]
    [request] = prometheus.requests
    assert request.query == {"query": [query], "timeout": ["5"]}
    assert evaluate("< 0.05", samples).held


async def test_a_scalar_answer(prometheus: VendorServer) -> None:
    prometheus.on(
        "GET",
        "/api/v1/query",
        Reply(json={"status": "success", "data": {"resultType": "scalar", "result": [1772366400.0, "0.3"]}}),
    )
    assert await query_prometheus(prometheus.url, "scalar(up)", 5) == [Sample(labels={}, value="0.3")]


async def test_credentials_in_the_url_are_sent_but_never_shown(prometheus: VendorServer) -> None:
    def refuse(request: Recorded) -> Reply:
        return Reply(503, json={"status": "error", "error": "overloaded"}, headers={"Retry-After": "4"})

    prometheus.on("GET", "/api/v1/query", refuse)
    url = prometheus.url.replace("http://", "http://tocsin:pa55word@")
    with pytest.raises(RetryableRemediationError) as err:
        await query_prometheus(url, "up", 5)
    assert err.value.kind == "PrometheusUnavailable" and err.value.retry_after == 4.0
    assert "pa55word" not in str(err.value) and prometheus.url in str(err.value)
    expected = "Basic " + base64.b64encode(b"tocsin:pa55word").decode()
    assert prometheus.requests[0].headers["authorization"] == expected


async def test_a_refused_query_is_permanent(prometheus: VendorServer) -> None:
    prometheus.on(
        "GET",
        "/api/v1/query",
        Reply(400, json={"status": "error", "errorType": "bad_data", "error": 'parse error: unexpected "}"'}),
    )
    with pytest.raises(PermanentRemediationError) as err:
        await query_prometheus(prometheus.url, "sum(up}", 5)
    assert err.value.kind == "BadQuery"
    refusal = f'Prometheus at {prometheus.url} answered 400: bad_data: parse error: unexpected "}}"'
    assert str(err.value) == f"`sum(up}}`: {refusal}", "the refusal names the query it refused"


async def test_a_range_vector_is_not_a_condition(prometheus: VendorServer) -> None:
    matrix = {"metric": {}, "values": [[1.0, "1"], [2.0, "2"]]}
    prometheus.on("GET", "/api/v1/query", Reply(json={"status": "success", "data": {"result": [matrix]}}))
    with pytest.raises(PermanentRemediationError, match="must return an instant vector or a scalar"):
        await query_prometheus(prometheus.url, "up[5m]", 5)


async def test_an_unreachable_prometheus_is_retryable() -> None:
    unreachable = r"^Prometheus at http://127\.0\.0\.1:9 unreachable \(connection refused or failed\)$"
    with pytest.raises(RetryableRemediationError, match=unreachable):
        await query_prometheus("http://127.0.0.1:9", "up", 1)
