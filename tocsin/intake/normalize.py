"""From a validated payload (tocsin.intake.sources) to a `Batch` of `NormalizedAlert`s: one function per source.

`normalize(source, data)` validates parsed JSON against the source's schema and translates it; it raises
pydantic's `ValidationError` (with field paths) on anything the schema does not accept. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from tocsin.intake.contracts import AlertSource, NormalizedAlert
from tocsin.intake.limits import MAX_FINGERPRINT, AlertAnnotations
from tocsin.intake.sources import (
    AlertmanagerAlert,
    AlertmanagerWebhook,
    GenericAlert,
    GrafanaWebhook,
    PagerDutyEvent,
    PagerDutyPayload,
    ReceiverSource,
    parse_generic,
    parse_pagerduty,
)


@dataclass(frozen=True)
class Batch:
    """A payload's alerts, and how many the sender left out (Alertmanager's and Grafana's `truncatedAlerts`)."""

    alerts: list[NormalizedAlert]
    truncated_alerts: int = 0


def _digest(value: object, length: int = 32) -> str:
    text = json.dumps(value, ensure_ascii=True, separators=(",", ":"), sort_keys=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()[:length]


def labels_fingerprint(labels: Mapping[str, str]) -> str:
    """For sources without a fingerprint: the same label set is the same alert, whatever the key order."""
    return _digest(sorted(labels.items()))


def _set(ts: datetime | None) -> datetime | None:
    """Go's zero time ("0001-01-01T00:00:00Z", Alertmanager's endsAt of a firing alert) means unset."""
    return None if ts is None or ts.year == 1 else ts


def _summary(annotations: AlertAnnotations) -> str:
    return annotations.summary or annotations.description


def _from_alertmanager_alert(source: AlertSource, alert: AlertmanagerAlert) -> NormalizedAlert:
    labels = alert.labels.as_dict()
    return NormalizedAlert(
        source=source,
        status=alert.status,
        labels=labels,
        annotations=alert.annotations.as_dict(),
        summary=_summary(alert.annotations),
        fingerprint=alert.fingerprint or labels_fingerprint(labels),
        starts_at=_set(alert.startsAt),
        ends_at=_set(alert.endsAt),
    )


def alertmanager_alerts(webhook: AlertmanagerWebhook) -> Batch:
    """Every alert of the group, firing and resolved, each with its own status (not the group's)."""
    return Batch(
        alerts=[_from_alertmanager_alert("alertmanager", a) for a in webhook.alerts],
        truncated_alerts=webhook.truncatedAlerts,
    )


def grafana_alerts(webhook: GrafanaWebhook) -> Batch:
    return Batch(
        alerts=[_from_alertmanager_alert("grafana", a) for a in webhook.alerts],
        truncated_alerts=webhook.truncatedAlerts,
    )


def pagerduty_dedup_key(event: PagerDutyEvent) -> str:
    """The event's dedup_key, or for a trigger without one the key PagerDuty would generate and return.

    PagerDuty generates a random UUID; ours is a hash of the routing key and the describing fields (not the
    timestamp or custom_details), so a sender retrying a trigger reaches the same incident instead of
    opening a second one. The routing key only enters the hash: it cannot be recovered from the key.
    """
    if event.dedup_key is not None:
        return event.dedup_key
    p = event.payload
    assert p is not None  # a trigger always has a payload
    return _digest([event.routing_key, p.summary, p.source, p.severity, p.component, p.group, p.class_])


def pagerduty_alert(event: PagerDutyEvent) -> NormalizedAlert:
    """Labels: `alertname` (payload.class or "pagerduty"), `service` (component or source), `severity`,
    `group`. The dedup_key names the alert, so a resolve without a payload finds the trigger's alert.

    A resolve event resolves its incident at once (`resolve_now`): PagerDuty resolves on it, acknowledged or
    not, where a quiet alert only starts the flap window (and an acknowledged incident holds it open)."""
    dedup_key = pagerduty_dedup_key(event)
    p = event.payload or PagerDutyPayload()
    labels = {"alertname": p.class_ or "pagerduty"}
    if service := p.component or p.source:
        labels["service"] = service
    if p.severity:
        labels["severity"] = p.severity
    if p.group:
        labels["group"] = p.group
    annotations = {}
    for name, value in (("source", p.source), ("component", p.component), ("class", p.class_)):
        if value:
            annotations[name] = value
    if p.custom_details:
        annotations["custom_details"] = json.dumps(p.custom_details, ensure_ascii=False, sort_keys=True)
    return NormalizedAlert(
        source="pagerduty",
        status="resolved" if event.event_action == "resolve" else "firing",
        labels=labels,
        annotations=annotations,
        summary=p.summary or "",
        fingerprint=dedup_key if len(dedup_key) <= MAX_FINGERPRINT else _digest(dedup_key),
        starts_at=p.timestamp if event.event_action == "trigger" else None,
        ends_at=p.timestamp if event.event_action == "resolve" else None,
        dedup_key=dedup_key,
        acknowledge=event.event_action == "acknowledge",
        resolve_now=event.event_action == "resolve",
    )


def generic_alerts(alerts: list[GenericAlert]) -> Batch:
    out = []
    for alert in alerts:
        labels = alert.labels.as_dict()
        out.append(
            NormalizedAlert(
                source="generic",
                status=alert.status,
                labels=labels,
                annotations=alert.annotations.as_dict(),
                summary=alert.summary or _summary(alert.annotations),
                fingerprint=alert.fingerprint or labels_fingerprint(labels),
                starts_at=alert.starts_at,
                ends_at=alert.ends_at,
            )
        )
    return Batch(alerts=out)


NORMALIZERS: dict[ReceiverSource, Callable[[object], Batch]] = {
    "alertmanager": lambda data: alertmanager_alerts(AlertmanagerWebhook.model_validate(data)),
    "grafana": lambda data: grafana_alerts(GrafanaWebhook.model_validate(data)),
    "pagerduty": lambda data: Batch(alerts=[pagerduty_alert(parse_pagerduty(data))]),
    "generic": lambda data: generic_alerts(parse_generic(data)),
}


def normalize(source: ReceiverSource, data: object) -> Batch:
    """Parsed JSON in, normalized alerts out; pydantic's ValidationError (with field paths) if it is invalid."""
    return NORMALIZERS[source](data)
