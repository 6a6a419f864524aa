"""`tocsin rules export`: the policy's triggers as Prometheus rules and a route pointing at the receiver, read
back (promtool and amtool check the exported files in tests/integration/test_rules_export_tools.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tocsin.detection.prometheus_rules import alertmanager_config, prometheus_duration, prometheus_rules
from tocsin.policy.heartbeats import Heartbeat
from tocsin.policy.schema import Policy


@pytest.mark.parametrize(
    ("value", "text"),
    [(timedelta(minutes=2), "2m"), (timedelta(seconds=90), "1m30s"), (timedelta(hours=1), "1h"), (timedelta(0), "0s")],
)
def test_prometheus_durations(value: timedelta, text: str) -> None:
    assert prometheus_duration(value) == text


def test_every_trigger_becomes_a_rule_with_its_name_duration_and_severity(default_policy: Policy) -> None:
    rules = {r["alert"]: r for g in prometheus_rules(default_policy)["groups"] for r in g["rules"]}
    assert set(rules) == {
        "ServiceAvailabilityLow",
        "ServiceErrorRateHigh",
        "ServiceResponseTimeHigh",
        "DatabaseConnectionPoolSaturated",
        "DatabaseQueryLatencyHigh",
    }
    assert rules["ServiceAvailabilityLow"]["for"] == "2m"
    assert rules["ServiceAvailabilityLow"]["labels"] == {
        "tocsin_workflow": "service_down_detection",
        "severity": "critical",
    }
    assert rules["DatabaseQueryLatencyHigh"]["for"] == "10m"
    assert rules["DatabaseQueryLatencyHigh"]["labels"]["severity"] == "error"


def test_the_route_groups_as_tocsin_groups_incidents(default_policy: Policy) -> None:
    config = alertmanager_config(default_policy, "http://tocsin:8080/api/v1/alerts/alertmanager", "/run/token")
    assert config["route"]["group_by"] == default_policy.intake.group_by
    (webhook,) = config["receivers"][0]["webhook_configs"]
    assert webhook["send_resolved"] is True
    assert webhook["http_config"]["authorization"]["credentials_file"] == "/run/token"


def test_the_watchdog_alert_feeds_the_watchdog_heartbeat(default_policy: Policy) -> None:
    beat = Heartbeat(interval=timedelta(minutes=1), service="monitoring")
    other = Heartbeat(interval=timedelta(minutes=5), service="billing")
    policy = default_policy.model_copy(update={"heartbeats": {"nightly-backup": other, "prometheus-watchdog": beat}})
    config = alertmanager_config(policy, "https://tocsin.example.com:8443/api/v1/alerts/alertmanager", "/run/token")
    (route,) = config["route"]["routes"]
    assert route["matchers"] == ['alertname="Watchdog"']
    assert route["receiver"] == "tocsin-heartbeat-prometheus-watchdog"
    assert route["repeat_interval"] == "30s"  # half the interval: a lost repeat is no missed heartbeat
    receiver = next(r for r in config["receivers"] if r["name"] == route["receiver"])
    (webhook,) = receiver["webhook_configs"]
    assert webhook["url"] == "https://tocsin.example.com:8443/api/v1/heartbeats/prometheus-watchdog"
    assert webhook["http_config"]["authorization"]["credentials_file"] == "/run/token"
    # Two heartbeats, neither named for the Watchdog: no guess, no route.
    unnamed = default_policy.model_copy(update={"heartbeats": {"a": beat, "b": other}})
    assert "routes" not in alertmanager_config(unnamed, "http://tocsin:8080/api/v1/alerts/alertmanager")["route"]
    assert "routes" not in alertmanager_config(default_policy, "http://tocsin:8080/x")["route"]
