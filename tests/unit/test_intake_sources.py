"""Source parsers: each vendor's documented payload (shapes copied from its docs) to NormalizedAlert, strictly."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tests.support.alerts import ALERTMANAGER, GRAFANA, PAGERDUTY_TRIGGER, ROUTING_KEY, json_values
from tocsin.intake.limits import MAX_ALERTS, MAX_LABEL_VALUE, MAX_LABELS
from tocsin.intake.normalize import Batch, labels_fingerprint, normalize, pagerduty_dedup_key
from tocsin.intake.sources import ReceiverSource, describe_errors, parse_pagerduty


def errors_of(source: ReceiverSource, data: object) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        normalize(source, data)
    return describe_errors(caught.value)


def with_alerts(base: dict[str, Any], alerts: list[dict[str, Any]]) -> dict[str, Any]:
    payload = copy.deepcopy(base)
    payload["alerts"] = alerts
    return payload


# --- Alertmanager -------------------------------------------------------------------------------------------


def test_alertmanager_every_alert_of_the_group_firing_and_resolved() -> None:
    batch = normalize("alertmanager", ALERTMANAGER)
    assert batch.truncated_alerts == 0
    firing, resolved = batch.alerts
    assert firing.source == "alertmanager"
    assert firing.status == "firing"
    assert firing.labels == ALERTMANAGER["alerts"][0]["labels"]
    assert firing.annotations["runbook_url"] == "https://runbooks.example.com/availability"
    assert firing.summary == "checkout availability is 97.1%"
    assert firing.fingerprint == "5f1c0d1a6c8e2b3f"
    assert firing.starts_at == datetime(2026, 3, 1, 10, 0, 0, 123456, tzinfo=UTC)
    assert firing.ends_at is None  # Go's zero time: unset
    assert firing.dedup_key is None and not firing.acknowledge
    # Each alert keeps its own status, not the group's.
    assert resolved.status == "resolved"
    assert resolved.summary == "checkout-2 is back"  # description when there is no summary
    assert resolved.ends_at == datetime(2026, 3, 1, 10, 1, 30, tzinfo=timezone(timedelta(hours=1)))


def test_alertmanager_truncated_alerts_are_reported() -> None:
    payload = copy.deepcopy(ALERTMANAGER)
    payload["truncatedAlerts"] = 7
    assert normalize("alertmanager", payload).truncated_alerts == 7


def test_alertmanager_fields_added_by_newer_versions_are_accepted() -> None:
    payload = copy.deepcopy(ALERTMANAGER)
    payload["someFutureField"] = {"x": 1}
    payload["alerts"][0]["silencedBy"] = ["abc"]
    assert len(normalize("alertmanager", payload).alerts) == 2


def test_alertmanager_without_fingerprint_gets_the_label_hash() -> None:
    alert = copy.deepcopy(ALERTMANAGER["alerts"][0])
    del alert["fingerprint"]
    (normalized,) = normalize("alertmanager", with_alerts(ALERTMANAGER, [alert])).alerts
    assert normalized.fingerprint == labels_fingerprint(alert["labels"])


def test_alertmanager_errors_name_the_field_path() -> None:
    alerts = [copy.deepcopy(ALERTMANAGER["alerts"][0]) for _ in range(5)]
    del alerts[3]["labels"]["alertname"]
    alerts[1]["labels"]["replicas"] = 3
    alerts[2]["startsAt"] = 1700000000
    alerts[4]["status"] = "pending"
    assert errors_of("alertmanager", with_alerts(ALERTMANAGER, alerts)) == [
        "alerts.1.labels.replicas: Input should be a valid string",
        "alerts.2.startsAt: Value error, Input should be an RFC 3339 timestamp string",
        "alerts.3.labels.alertname: Field required",
        "alerts.4.status: Input should be 'firing' or 'resolved'",
    ]


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"version": "3"}, "version: Input should be '4'"),
        ({"version": 4}, "version: Input should be '4'"),
        ({"truncatedAlerts": "2"}, "truncatedAlerts: Input should be a valid integer"),
        ({"truncatedAlerts": -1}, "truncatedAlerts: Input should be greater than or equal to 0"),
        ({"alerts": {}}, "alerts: Input should be a JSON array"),
        ({"commonLabels": []}, "commonLabels: Input should be a JSON object"),
    ],
)
def test_alertmanager_strict_types(change: dict[str, Any], error: str) -> None:
    assert errors_of("alertmanager", {**ALERTMANAGER, **change}) == [error]


def test_timestamps_need_an_offset() -> None:
    alert = {**ALERTMANAGER["alerts"][0], "startsAt": "2026-03-01T10:00:00"}
    assert errors_of("alertmanager", with_alerts(ALERTMANAGER, [alert])) == [
        "alerts.0.startsAt: Input should have timezone info"
    ]


def test_bounds() -> None:
    alert = ALERTMANAGER["alerts"][0]
    too_many = with_alerts(ALERTMANAGER, [alert] * (MAX_ALERTS + 1))
    assert errors_of("alertmanager", too_many) == [
        f"alerts: List should have at most {MAX_ALERTS} items after validation, not {MAX_ALERTS + 1}"
    ]
    assert len(normalize("alertmanager", with_alerts(ALERTMANAGER, [alert] * MAX_ALERTS)).alerts) == MAX_ALERTS
    long_value = {**alert, "labels": {**alert["labels"], "pod": "x" * (MAX_LABEL_VALUE + 1)}}
    assert errors_of("alertmanager", with_alerts(ALERTMANAGER, [long_value])) == [
        f"alerts.0.labels.pod: String should have at most {MAX_LABEL_VALUE} characters"
    ]
    wide = {**alert, "labels": {"alertname": "X", **{f"l{i}": "v" for i in range(MAX_LABELS)}}}
    assert errors_of("alertmanager", with_alerts(ALERTMANAGER, [wide])) == [
        f"alerts.0.labels: Value error, at most {MAX_LABELS} labels"
    ]


# --- Grafana ------------------------------------------------------------------------------------------------


def test_grafana_webhook() -> None:
    batch = normalize("grafana", GRAFANA)
    firing, resolved = batch.alerts
    assert firing.source == "grafana"
    assert firing.labels == {"alertname": "High memory usage", "team": "blue", "zone": "us-1"}
    assert firing.summary == "This alert was triggered for zone us-1"
    assert firing.fingerprint == "c6eadffa33fcdf37"
    assert firing.starts_at == datetime(2021, 10, 12, 7, 51, 3, 157076, tzinfo=UTC)
    assert firing.ends_at is None
    assert resolved.status == "resolved"
    # Grafana before 9 sends no fingerprint: the stable hash of the labels stands in.
    assert resolved.fingerprint == labels_fingerprint({"alertname": "High CPU usage", "team": "blue", "zone": "eu-1"})


def test_grafana_truncated_and_extra_fields() -> None:
    payload = copy.deepcopy(GRAFANA)
    payload["truncatedAlerts"] = 3
    payload["alerts"][0]["imageURL"] = "https://example.com/panel.png"
    payload["alerts"][0]["orgId"] = 1
    assert normalize("grafana", payload).truncated_alerts == 3


def test_grafana_values_are_numbers() -> None:
    payload = copy.deepcopy(GRAFANA)
    payload["alerts"][0]["values"] = {"B": "high"}
    assert errors_of("grafana", payload) == ["alerts.0.values.B: Input should be a valid number"]


# --- PagerDuty Events API v2 --------------------------------------------------------------------------------


def test_pagerduty_trigger_maps_to_labels() -> None:
    (alert,) = normalize("pagerduty", PAGERDUTY_TRIGGER).alerts
    assert alert.source == "pagerduty"
    assert alert.status == "firing" and not alert.acknowledge
    assert alert.labels == {
        "alertname": "deploy",
        "service": "postgres",  # component before source
        "severity": "info",
        "group": "prod-datapipe",
    }
    assert alert.summary == "Example alert on host1.example.com"
    assert alert.dedup_key == "samplekeyhere"
    assert alert.fingerprint == "samplekeyhere"
    assert alert.starts_at == datetime(2015, 7, 17, 8, 42, 58, 315000, tzinfo=UTC)
    assert alert.annotations["source"].startswith("monitoringtool:")
    assert alert.annotations["custom_details"] == '{"load avg": 0.75, "ping time": "1500ms"}'


def test_pagerduty_minimal_trigger() -> None:
    event = {
        "routing_key": ROUTING_KEY,
        "event_action": "trigger",
        "payload": {"summary": "disk full", "source": "db-1", "severity": "critical"},
    }
    (alert,) = normalize("pagerduty", event).alerts
    assert alert.labels == {"alertname": "pagerduty", "service": "db-1", "severity": "critical"}


def test_pagerduty_missing_dedup_key_is_generated_deterministically() -> None:
    event = copy.deepcopy(PAGERDUTY_TRIGGER)
    del event["dedup_key"]
    (alert,) = normalize("pagerduty", event).alerts
    assert alert.dedup_key and len(alert.dedup_key) == 32
    assert alert.fingerprint == alert.dedup_key
    # A retry of the same trigger (even with a new timestamp) reaches the same alert; another problem does not.
    retry = copy.deepcopy(event)
    retry["payload"]["timestamp"] = "2015-07-17T08:45:00+0000"
    assert normalize("pagerduty", retry).alerts[0].dedup_key == alert.dedup_key
    other = copy.deepcopy(event)
    other["payload"]["summary"] = "Another alert"
    assert normalize("pagerduty", other).alerts[0].dedup_key != alert.dedup_key
    assert ROUTING_KEY not in alert.dedup_key
    assert pagerduty_dedup_key(parse_pagerduty(event)) == alert.dedup_key


def test_pagerduty_acknowledge_and_resolve() -> None:
    ack = {"routing_key": ROUTING_KEY, "dedup_key": "samplekeyhere", "event_action": "acknowledge"}
    (alert,) = normalize("pagerduty", ack).alerts
    assert alert.status == "firing" and alert.acknowledge
    assert alert.dedup_key == "samplekeyhere" and alert.fingerprint == "samplekeyhere"
    assert alert.labels == {"alertname": "pagerduty"}
    resolve = {**ack, "event_action": "resolve"}
    (alert,) = normalize("pagerduty", resolve).alerts
    assert alert.status == "resolved" and not alert.acknowledge
    # Alertmanager's PagerDuty notifier sends the payload with its resolves too.
    resolve_with_payload = {**resolve, "payload": PAGERDUTY_TRIGGER["payload"]}
    (alert,) = normalize("pagerduty", resolve_with_payload).alerts
    assert alert.status == "resolved" and alert.labels["service"] == "postgres"


def test_pagerduty_long_dedup_key_is_hashed_into_the_fingerprint() -> None:
    event = {**PAGERDUTY_TRIGGER, "dedup_key": "k" * 255}
    (alert,) = normalize("pagerduty", event).alerts
    assert alert.dedup_key == "k" * 255
    assert len(alert.fingerprint) <= 200


@pytest.mark.parametrize(
    ("event", "errors"),
    [
        (
            {"routing_key": ROUTING_KEY, "event_action": "acknowledge"},
            ["dedup_key: Field required"],
        ),
        (
            {"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": ""},
            ["dedup_key: String should have at least 1 character"],
        ),
        (
            {"routing_key": ROUTING_KEY, "event_action": "trigger"},
            ["payload: Field required"],
        ),
        (
            {"routing_key": ROUTING_KEY, "event_action": "trigger", "payload": {"source": "h", "class_": "x"}},
            [
                "payload.summary: Field required",
                "payload.severity: Field required",
                "payload.class_: Extra inputs are not permitted",
            ],
        ),
        (
            {**PAGERDUTY_TRIGGER, "payload": {**PAGERDUTY_TRIGGER["payload"], "summary": "s" * 1025}},
            ["payload.summary: String should have at most 1024 characters"],
        ),
        (
            {**PAGERDUTY_TRIGGER, "payload": {**PAGERDUTY_TRIGGER["payload"], "severity": "high"}},
            ["payload.severity: Input should be 'critical', 'error', 'warning' or 'info'"],
        ),
        (
            {**PAGERDUTY_TRIGGER, "routing_key": "short"},
            ["routing_key: String should have at least 32 characters"],
        ),
        (
            {**PAGERDUTY_TRIGGER, "dedup_key": "d" * 256},
            ["dedup_key: String should have at most 255 characters"],
        ),
        (
            {**PAGERDUTY_TRIGGER, "event_action": "snooze"},
            ["event_action: Input should be 'trigger', 'acknowledge' or 'resolve'"],
        ),
        (
            {"routing_key": ROUTING_KEY},
            ["event_action: Field required"],
        ),
        (
            {**PAGERDUTY_TRIGGER, "incident_key": "v1 field"},
            ["incident_key: Extra inputs are not permitted"],
        ),
        ([PAGERDUTY_TRIGGER], ["body: Input should be a JSON object"]),
    ],
)
def test_pagerduty_invalid_events(event: object, errors: list[str]) -> None:
    assert errors_of("pagerduty", event) == errors


# --- Generic JSON -------------------------------------------------------------------------------------------


def test_generic_single_alert_with_defaults() -> None:
    (alert,) = normalize("generic", {"labels": {"alertname": "QueueBacklog", "service": "billing"}}).alerts
    assert alert.source == "generic"
    assert alert.status == "firing"
    assert alert.fingerprint == labels_fingerprint({"service": "billing", "alertname": "QueueBacklog"})
    assert alert.summary == "" and alert.starts_at is None


def test_generic_list() -> None:
    batch = normalize(
        "generic",
        [
            {
                "status": "firing",
                "labels": {"alertname": "QueueBacklog", "service": "billing", "severity": "warning"},
                "annotations": {"runbook": "https://runbooks.example.com/queue"},
                "summary": "billing queue is 12k deep",
                "fingerprint": "billing-queue",
                "starts_at": "2026-03-01T10:00:00Z",
            },
            {
                "status": "resolved",
                "labels": {"alertname": "QueueBacklog", "service": "search"},
                "annotations": {"summary": "search queue drained"},
                "ends_at": "2026-03-01T10:05:00+00:00",
            },
        ],
    )
    first, second = batch.alerts
    assert first.fingerprint == "billing-queue" and first.summary == "billing queue is 12k deep"
    assert first.starts_at == datetime(2026, 3, 1, 10, tzinfo=UTC)
    assert second.status == "resolved" and second.summary == "search queue drained"
    assert second.ends_at == datetime(2026, 3, 1, 10, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("data", "errors"),
    [
        ({"labels": {"service": "x"}}, ["labels.alertname: Field required"]),
        ({"labels": {"alertname": ""}}, ["labels.alertname: String should have at least 1 character"]),
        ([{"labels": {"alertname": "a"}}, {"labels": {}}], ["1.labels.alertname: Field required"]),
        ([], ["body: List should have at least 1 item after validation, not 0"]),
        ({"labels": {"alertname": "a"}, "severity": "high"}, ["severity: Extra inputs are not permitted"]),
        ({"labels": {"alertname": "a"}, "status": "ok"}, ["status: Input should be 'firing' or 'resolved'"]),
        ({"labels": {"alertname": "a"}, "fingerprint": ""}, ["fingerprint: String should have at least 1 character"]),
        ({"labels": {"alertname": 5}}, ["labels.alertname: Input should be a valid string"]),
        ({"labels": {"alertname": "a", "n": True}}, ["labels.n: Input should be a valid string"]),
        ("an alert", ["body: Input should be a JSON object"]),
    ],
)
def test_generic_invalid(data: object, errors: list[str]) -> None:
    assert errors_of("generic", data) == errors


def test_fingerprint_is_the_sorted_label_set() -> None:
    assert labels_fingerprint({"a": "1", "b": "2"}) == labels_fingerprint({"b": "2", "a": "1"})
    assert labels_fingerprint({"a": "1", "b": "2"}) != labels_fingerprint({"a": "1", "b": "3"})
    # No separator trick makes two label sets collide.
    assert labels_fingerprint({"a": "1,b=2"}) != labels_fingerprint({"a": "1", "b": "2"})


def test_describe_errors_caps_the_list() -> None:
    alerts = [{"status": "firing", "labels": {}} for _ in range(30)]
    lines = errors_of("alertmanager", with_alerts(ALERTMANAGER, alerts))
    assert len(lines) == 21
    assert lines[-1] == "... and 10 more"


# --- Properties ---------------------------------------------------------------------------------------------

label_sets = st.dictionaries(st.text(min_size=1, max_size=12), st.text(max_size=20), max_size=5)
# What a valid label holds: any text but control characters (and surrogates, which JSON cannot carry).
label_text = st.characters(exclude_categories=("Cc", "Cs"))
valid_label_sets = st.dictionaries(
    st.text(label_text, min_size=1, max_size=12), st.text(label_text, max_size=20), max_size=5
)
timestamps = st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat())
alert_like = st.fixed_dictionaries(
    {"status": st.sampled_from(["firing", "resolved"]) | json_values},
    optional={
        "labels": st.builds(lambda extra, name: {**extra, "alertname": name}, label_sets, st.text(max_size=10))
        | json_values,
        "annotations": label_sets | json_values,
        "startsAt": timestamps | json_values,
        "endsAt": timestamps | json_values,
        "fingerprint": st.text(max_size=30) | json_values,
        "values": st.dictionaries(st.text(max_size=5), st.floats(allow_nan=False) | st.none()) | json_values,
    },
)
webhook_like = st.fixed_dictionaries(
    {"alerts": st.lists(alert_like, max_size=4)},
    optional={
        "version": st.sampled_from(["4", "1", 4]),
        "status": st.sampled_from(["firing", "resolved"]) | json_values,
        "truncatedAlerts": st.integers(-2, 5) | json_values,
        "groupLabels": label_sets | json_values,
        "extra": json_values,
    },
)
pagerduty_like = st.fixed_dictionaries(
    {"event_action": st.sampled_from(["trigger", "acknowledge", "resolve"]) | json_values},
    optional={
        "routing_key": st.just(ROUTING_KEY) | st.text(max_size=40),
        "dedup_key": st.text(max_size=300) | json_values,
        "payload": st.fixed_dictionaries(
            {},
            optional={
                "summary": st.text(max_size=30) | json_values,
                "source": st.text(max_size=30) | json_values,
                "severity": st.sampled_from(["critical", "error", "warning", "info", "high"]),
                "timestamp": timestamps | st.text(max_size=30),
                "class": st.text(max_size=10) | json_values,
                "custom_details": json_values,
            },
        )
        | json_values,
        "links": json_values,
    },
)

SOURCES: list[ReceiverSource] = ["alertmanager", "grafana", "pagerduty", "generic"]


def normalizes_or_explains(source: ReceiverSource, data: object) -> None:
    """The whole contract: a Batch, or a ValidationError with a line per problem, and nothing else."""
    try:
        batch = normalize(source, data)
    except ValidationError as err:
        assert describe_errors(err)
        return
    assert isinstance(batch, Batch)
    for alert in batch.alerts:
        assert alert.labels.get("alertname")
        assert 0 < len(alert.fingerprint) <= 200


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(source=st.sampled_from(SOURCES), data=json_values)
def test_any_json_normalizes_or_is_explained(source: ReceiverSource, data: object) -> None:
    normalizes_or_explains(source, data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(source=st.sampled_from(["alertmanager", "grafana"]), data=webhook_like)
def test_webhook_shaped_json_normalizes_or_is_explained(source: ReceiverSource, data: object) -> None:
    normalizes_or_explains(source, data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=pagerduty_like)
def test_pagerduty_shaped_json_normalizes_or_is_explained(data: object) -> None:
    normalizes_or_explains("pagerduty", data)


@settings(max_examples=100, deadline=None)
@given(
    labels=valid_label_sets,
    name=st.text(label_text, min_size=1, max_size=10),
    status=st.sampled_from(["firing", "resolved"]),
)
def test_valid_generic_alerts_keep_labels_and_fingerprint(labels: dict[str, str], name: str, status: str) -> None:
    labels = {**labels, "alertname": name}
    (alert,) = normalize("generic", {"status": status, "labels": labels}).alerts
    assert alert.labels == labels
    assert alert.status == status
    assert alert.fingerprint == labels_fingerprint(dict(reversed(list(labels.items()))))
