"""Detection without Alertmanager, without servers: the pure state machine (tocsin.detection.evaluate) under
tests/fixtures/detector-policy.yaml, and the detector's configuration. Against a real Prometheus, Alertmanager
and Temporal: tests/integration/test_detection_prometheus.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest

from tests.support.paths import FIXTURES, ROOT
from tocsin.addresses import redact
from tocsin.detection.contracts import (
    DetectionState,
    Evaluation,
    FiringSeries,
    SeriesSample,
    TriggerEvaluation,
    TriggerState,
)
from tocsin.detection.evaluate import alertmanager_fingerprint, detection_triggers, plan_run, settle
from tocsin.policy.loader import load_policy
from tocsin.policy.schema import Policy
from tocsin.prometheus import prometheus_url_from_env

POLICY = FIXTURES / "detector-policy.yaml"
AVAILABILITY = "service_down_detection/ServiceAvailabilityLow"
TYPO = "database_performance_degradation/DatabaseTypo"
T = TypeVar("T")


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy(POLICY)


# --- the pure state machine -----------------------------------------------------------------------------

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def labels_of(service: str) -> dict[str, str]:
    return {"service": service, "environment": "prod"}


def answer(*services: str, truncated: int = 0) -> TriggerEvaluation:
    spec_labels = {"tocsin_workflow": "service_down_detection", "severity": "critical"}
    series = {
        alertmanager_fingerprint({**labels_of(s), **spec_labels, "alertname": "ServiceAvailabilityLow"}): SeriesSample(
            labels=labels_of(s), value="0.2"
        )
        for s in services
    }
    return TriggerEvaluation(series=series, truncated=truncated)


def evaluation(at: datetime, result: TriggerEvaluation) -> Evaluation:
    return Evaluation(at=at, triggers={AVAILABILITY: result})


def step(
    policy: Policy, state: DetectionState, result: TriggerEvaluation | None, at: datetime, deliver: bool = True
) -> tuple[DetectionState, list[tuple[str, str]]]:
    specs = [s for s in detection_triggers(policy) if s.query.id == AVAILABILITY]
    plan = plan_run(state, specs, evaluation(at, result) if result else None, at, max_series=2)
    moves: list[tuple[str, str]] = [(t.status, t.labels["service"]) for t in plan.transitions]
    return settle(plan, plan.transitions if deliver else []), moves


def test_a_series_fires_only_after_holding_for_the_duration_and_resolves_when_gone(policy: Policy) -> None:
    state, moves = step(policy, DetectionState(), answer("checkout"), T0)
    assert moves == [] and len(state.triggers[AVAILABILITY].pending) == 1
    for seconds in (1, 2, 3):  # 4 seconds are needed
        state, moves = step(policy, state, answer("checkout"), T0 + timedelta(seconds=seconds))
        assert moves == []
    assert list(state.triggers[AVAILABILITY].pending.values()) == [T0], "first seen is kept across runs"
    state, moves = step(policy, state, answer("checkout"), T0 + timedelta(seconds=4))
    assert moves == [("firing", "checkout")]
    firing = state.triggers[AVAILABILITY]
    assert not firing.pending and [f.since for f in firing.firing.values()] == [T0]
    state, moves = step(policy, state, answer("checkout"), T0 + timedelta(seconds=5))
    assert moves == [], "still firing: nothing is sent again"
    state, moves = step(policy, state, answer(), T0 + timedelta(seconds=6))
    assert moves == [("resolved", "checkout")] and state.triggers == {}


def test_a_series_that_disappears_while_pending_starts_over(policy: Policy) -> None:
    state, _ = step(policy, DetectionState(), answer("checkout"), T0)
    state, _ = step(policy, state, answer(), T0 + timedelta(seconds=2))
    assert state.triggers == {}
    state, moves = step(policy, state, answer("checkout"), T0 + timedelta(seconds=4))
    assert moves == [] and list(state.triggers[AVAILABILITY].pending.values()) == [T0 + timedelta(seconds=4)]


def test_nothing_changes_when_prometheus_cannot_answer_or_intake_does_not_accept(policy: Policy) -> None:
    state, _ = step(policy, DetectionState(), answer("checkout"), T0)
    for result in (None, TriggerEvaluation(error="HTTP 503", error_kind="unavailable")):
        after, moves = step(policy, state, result, T0 + timedelta(seconds=30))
        assert after == state and moves == []
    # Intake down when it is time to fire: still pending, handed over again next run.
    after, moves = step(policy, state, answer("checkout"), T0 + timedelta(seconds=10), deliver=False)
    assert moves == [("firing", "checkout")] and after == state
    fired, moves = step(policy, after, answer("checkout"), T0 + timedelta(seconds=11))
    assert moves == [("firing", "checkout")] and fired.triggers[AVAILABILITY].firing
    # A truncated answer cannot tell "cleared" from "not listed": a firing series stays firing.
    kept, moves = step(policy, fired, answer("other", truncated=5), T0 + timedelta(seconds=12))
    assert ("resolved", "checkout") not in moves and kept.triggers[AVAILABILITY].firing == (
        fired.triggers[AVAILABILITY].firing
    )


def test_series_are_capped_per_trigger(policy: Policy) -> None:
    state, _ = step(policy, DetectionState(), answer("a", "b", "c"), T0)
    assert len(state.triggers[AVAILABILITY].pending) == 2
    state, moves = step(policy, state, answer("a", "b", "c"), T0 + timedelta(seconds=5))
    assert len(moves) == 2 and len(state.triggers[AVAILABILITY].firing) == 2
    assert not state.triggers[AVAILABILITY].pending, "no room left: the third is not tracked"


def test_a_trigger_removed_from_the_policy_resolves_its_alerts(policy: Policy) -> None:
    gone = TriggerState(firing={"abc": FiringSeries(labels={"alertname": "Old", "service": "x"}, since=T0)})
    state = DetectionState(triggers={"old_flow/Old": gone})
    plan = plan_run(state, detection_triggers(policy), None, T0, max_series=10)
    assert [(t.status, t.fingerprint) for t in plan.transitions] == [("resolved", "abc")]
    assert settle(plan, plan.transitions).triggers == {}


def test_detected_alerts_carry_the_exported_rules_labels(policy: Policy) -> None:
    spec = next(s for s in detection_triggers(policy) if s.query.id == AVAILABILITY)
    assert spec.query.labels == {
        "alertname": "ServiceAvailabilityLow",
        "tocsin_workflow": "service_down_detection",
        "severity": "critical",
    }
    assert spec.duration == timedelta(seconds=4)
    assert [s.query.id for s in detection_triggers(load_policy(ROOT / "policies" / "default.yaml"))] == [
        "service_down_detection/ServiceAvailabilityLow",
        "service_down_detection/ServiceErrorRateHigh",
        "service_down_detection/ServiceResponseTimeHigh",
        "database_performance_degradation/DatabaseConnectionPoolSaturated",
        "database_performance_degradation/DatabaseQueryLatencyHigh",
    ]


def test_a_full_trigger_stays_well_under_temporal_payload_warnings() -> None:
    series = {
        f"{i:016x}": SeriesSample(
            labels={
                "service": f"service-{i}",
                "environment": "production",
                "instance": f"10.0.{i // 250}.{i % 250}:9100",
            },
            value="0.123456789",
        )
        for i in range(1000)
    }
    size = len(TriggerEvaluation(series=series).model_dump_json())
    assert size < 150_000, size


# --- configuration --------------------------------------------------------------------------------------


def test_prometheus_url_from_the_environment(tmp_path: Path) -> None:
    assert prometheus_url_from_env({}) is None
    assert prometheus_url_from_env({"TOCSIN_PROMETHEUS_URL": " "}) is None
    assert prometheus_url_from_env({"TOCSIN_PROMETHEUS_URL": "http://127.0.0.1:9090"}) == "http://127.0.0.1:9090"
    secret = tmp_path / "url"
    secret.write_text("https://reader:s3cret@prom.example:9443/prometheus\n")
    url = prometheus_url_from_env({"TOCSIN_PROMETHEUS_URL_FILE": str(secret)})
    assert url == "https://reader:s3cret@prom.example:9443/prometheus"
    assert redact(url) == "https://prom.example:9443/prometheus"
    bad = [
        ({"TOCSIN_PROMETHEUS_URL": "prom:9090"}, "expected an http"),
        ({"TOCSIN_PROMETHEUS_URL": "http://a:b@h:99999"}, "expected an http"),
        ({"TOCSIN_PROMETHEUS_URL": "http://h", "TOCSIN_PROMETHEUS_URL_FILE": str(secret)}, "not both"),
        ({"TOCSIN_PROMETHEUS_URL_FILE": str(tmp_path / "missing")}, "cannot read"),
    ]
    for env, message in bad:
        with pytest.raises(ValueError, match=message) as caught:
            prometheus_url_from_env(env)
        assert "s3cret" not in str(caught.value) and "a:b" not in str(caught.value)


def test_the_default_policy_detects_every_30_seconds() -> None:
    detection = load_policy(ROOT / "policies" / "default.yaml").detection
    assert detection.interval == timedelta(seconds=30)
    assert detection.max_series_per_trigger == 1000
