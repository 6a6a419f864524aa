"""What alert senders send: Alertmanager's, Grafana's and PagerDuty's documented payloads, a normalized alert,
and any JSON value (a hypothesis strategy) for the parsers' properties."""

from __future__ import annotations

from typing import Any, Literal

from hypothesis import strategies as st

from tocsin.intake.contracts import NormalizedAlert

ROUTING_KEY = "R0123456789abcdef0123456789abcde"
assert len(ROUTING_KEY) == 32

# https://prometheus.io/docs/alerting/latest/configuration/#webhook_config, as Alertmanager 0.27 sends it.
ALERTMANAGER: dict[str, Any] = {
    "version": "4",
    "groupKey": '{}/{severity="critical"}:{alertname="ServiceAvailabilityLow"}',
    "truncatedAlerts": 0,
    "status": "firing",
    "receiver": "tocsin",
    "groupLabels": {"alertname": "ServiceAvailabilityLow"},
    "commonLabels": {"alertname": "ServiceAvailabilityLow", "environment": "prod", "severity": "critical"},
    "commonAnnotations": {},
    "externalURL": "http://alertmanager.example.com:9093",
    "alerts": [
        {
            "status": "firing",
            "labels": {
                "alertname": "ServiceAvailabilityLow",
                "environment": "prod",
                "instance": "checkout-1:8080",
                "job": "checkout",
                "service": "checkout",
                "severity": "critical",
            },
            "annotations": {
                "summary": "checkout availability is 97.1%",
                "runbook_url": "https://runbooks.example.com/availability",
            },
            "startsAt": "2026-03-01T10:00:00.123456789Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.example.com:9090/graph?g0.expr=up%3D%3D0&g0.tab=1",
            "fingerprint": "5f1c0d1a6c8e2b3f",
        },
        {
            "status": "resolved",
            "labels": {
                "alertname": "ServiceAvailabilityLow",
                "environment": "prod",
                "instance": "checkout-2:8080",
                "job": "checkout",
                "service": "checkout",
                "severity": "critical",
            },
            "annotations": {"description": "checkout-2 is back"},
            "startsAt": "2026-03-01T09:50:00Z",
            "endsAt": "2026-03-01T10:01:30+01:00",
            "generatorURL": "http://prometheus.example.com:9090/graph?g0.expr=up%3D%3D0&g0.tab=1",
            "fingerprint": "0e9b2a61d7c4f810",
        },
    ],
}

# https://grafana.com/docs/grafana/latest/alerting/configure-notifications/manage-contact-points/integrations/webhook-notifier/
GRAFANA: dict[str, Any] = {
    "receiver": "My Super Webhook",
    "status": "firing",
    "orgId": 1,
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "High memory usage", "team": "blue", "zone": "us-1"},
            "annotations": {
                "description": "The system has high memory usage",
                "runbook_url": "https://myrunbook.com/runbook/1234",
                "summary": "This alert was triggered for zone us-1",
            },
            "startsAt": "2021-10-12T09:51:03.157076+02:00",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "https://play.grafana.org/alerting/1afz29v7z/edit",
            "fingerprint": "c6eadffa33fcdf37",
            "silenceURL": "https://play.grafana.org/alerting/silence/new?alertmanager=grafana&matchers=alertname%3DT2",
            "dashboardURL": "",
            "panelURL": "",
            "values": {"B": 44.23943737541908, "C": 1},
            "valueString": "[ var='B' labels={} value=44.23943737541908 ]",
        },
        {
            "status": "resolved",
            "labels": {"alertname": "High CPU usage", "team": "blue", "zone": "eu-1"},
            "annotations": {"summary": "This alert was triggered for zone eu-1"},
            "startsAt": "2021-10-12T09:56:03.157076+02:00",
            "endsAt": "2021-10-12T10:06:03.157076+02:00",
            "generatorURL": "https://play.grafana.org/alerting/d1rdpdv7k/edit",
            "silenceURL": "https://play.grafana.org/alerting/silence/new?alertmanager=grafana&matchers=alertname%3DT1",
            "dashboardURL": "",
            "panelURL": "",
            "values": None,
            "valueString": "",
        },
    ],
    "groupLabels": {},
    "commonLabels": {"team": "blue"},
    "commonAnnotations": {},
    "externalURL": "https://play.grafana.org/",
    "version": "1",
    "groupKey": "{}:{}",
    "truncatedAlerts": 0,
    "title": "[FIRING:2]  (blue)",
    "state": "alerting",
    "message": "**Firing**\n\nLabels:\n - alertname = T2\n - team = blue\n - zone = us-1\n",
}

# https://developer.pagerduty.com/docs/events-api-v2/trigger-events/ (with a real-length routing key)
PAGERDUTY_TRIGGER: dict[str, Any] = {
    "payload": {
        "summary": "Example alert on host1.example.com",
        "timestamp": "2015-07-17T08:42:58.315+0000",
        "source": "monitoringtool:cloudvendor:central-region-dc-01:852559987:cluster/api-stats-prod-003",
        "severity": "info",
        "component": "postgres",
        "group": "prod-datapipe",
        "class": "deploy",
        "custom_details": {"ping time": "1500ms", "load avg": 0.75},
    },
    "routing_key": ROUTING_KEY,
    "dedup_key": "samplekeyhere",
    "images": [
        {
            "src": "https://www.pagerduty.com/wp-content/uploads/2016/05/pagerduty-logo-green.png",
            "href": "https://example.com/",
            "alt": "Example text",
        }
    ],
    "links": [{"href": "https://example.com/", "text": "Link text"}],
    "event_action": "trigger",
    "client": "Sample Monitoring Service",
    "client_url": "https://monitoring.example.com",
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=25,
)


def alert(
    name: str = "ServiceAvailabilityLow",
    service: str = "checkout",
    status: Literal["firing", "resolved"] = "firing",
    fingerprint: str | None = None,
    **labels: str,
) -> NormalizedAlert:
    all_labels = {"alertname": name, "service": service, "environment": "prod", **labels}
    return NormalizedAlert(
        source="alertmanager",
        status=status,
        labels=all_labels,
        summary=f"{name} on {service}",
        fingerprint=fingerprint or f"{name}-{service}",
    )
