"""The payloads each source documents, validated strictly, and their translation to `NormalizedAlert`.

One pair per source: a pydantic model of what the vendor sends and a function from a validated payload to
a `Batch` of normalized alerts. `normalize(source, data)` runs both on parsed JSON and raises pydantic's
`ValidationError` (with field paths) on anything the model does not accept; nothing here does I/O.

Strictness: no type coercion (a label value is a string, `truncatedAlerts` an integer, timestamps RFC 3339
strings with an offset), unknown keys rejected, except where a vendor adds fields over time (Alertmanager and
Grafana webhooks, their alerts): those keys are accepted and ignored. Every collection and string has a bound,
so the shape of a hostile payload cannot make us allocate beyond the body size limit.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from tocsin.intake.models import AlertSource, NormalizedAlert

MAX_ALERTS = 1000  # per payload; Alertmanager's `max_alerts` should be set to at most this
MAX_LABELS = 256  # per label or annotation set
MAX_NAME = 1024  # label and annotation names
MAX_LABEL_VALUE = 10_000
MAX_TEXT = 65_536  # annotation values, summaries, URLs
MAX_FINGERPRINT = 200  # NormalizedAlert.fingerprint
PAGERDUTY_SUMMARY_MAX = 1024
PAGERDUTY_DEDUP_KEY_MAX = 255
PAGERDUTY_ROUTING_KEY_LENGTH = 32


def _rfc3339_string(value: object) -> object:
    # JSON has no timestamp type: accept only strings, never numbers taken as epoch seconds.
    if not isinstance(value, str):
        raise ValueError("Input should be an RFC 3339 timestamp string")
    return value


Timestamp = Annotated[AwareDatetime, Field(strict=False), BeforeValidator(_rfc3339_string)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=MAX_NAME)]
LabelValue = Annotated[str, StringConstraints(max_length=MAX_LABEL_VALUE)]
Text = Annotated[str, StringConstraints(max_length=MAX_TEXT)]
Fingerprint = Annotated[str, StringConstraints(max_length=MAX_FINGERPRINT)]
Annotations = Annotated[dict[Name, Text], Field(max_length=MAX_LABELS)]
LabelSet = Annotated[dict[Name, LabelValue], Field(max_length=MAX_LABELS)]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class _Vendor(BaseModel):
    """A vendor's object: known keys strictly typed, keys added by newer versions accepted and ignored."""

    model_config = ConfigDict(strict=True, extra="allow", frozen=True)


class AlertLabels(BaseModel):
    """An alert's labels: string values, `alertname` required (Prometheus and Grafana always set it)."""

    model_config = ConfigDict(strict=True, extra="allow", frozen=True)

    alertname: Annotated[str, StringConstraints(min_length=1, max_length=MAX_LABEL_VALUE)]
    __pydantic_extra__: dict[Name, LabelValue] = Field(init=False)

    @model_validator(mode="before")
    @classmethod
    def _bounded(cls, data: Any) -> Any:
        if isinstance(data, dict) and len(data) > MAX_LABELS:
            raise ValueError(f"at most {MAX_LABELS} labels")
        return data

    def as_dict(self) -> dict[str, str]:
        return {"alertname": self.alertname, **(self.__pydantic_extra__ or {})}


# --- Alertmanager (webhook_config, payload version 4) -------------------------------------------------------


class AlertmanagerAlert(_Vendor):
    status: Literal["firing", "resolved"]
    labels: AlertLabels
    annotations: Annotations = Field(default_factory=dict)
    startsAt: Timestamp | None = None
    endsAt: Timestamp | None = None
    generatorURL: Text = ""
    fingerprint: Fingerprint = ""


class AlertmanagerWebhook(_Vendor):
    """https://prometheus.io/docs/alerting/latest/configuration/#webhook_config"""

    version: Literal["4"]
    groupKey: Text = ""
    truncatedAlerts: Annotated[int, Field(ge=0)] = 0
    status: Literal["firing", "resolved"]
    receiver: Text = ""
    groupLabels: LabelSet = Field(default_factory=dict)
    commonLabels: LabelSet = Field(default_factory=dict)
    commonAnnotations: Annotations = Field(default_factory=dict)
    externalURL: Text = ""
    alerts: Annotated[list[AlertmanagerAlert], Field(max_length=MAX_ALERTS)]


# --- Grafana unified alerting (webhook contact point) -------------------------------------------------------


class GrafanaAlert(AlertmanagerAlert):
    """Alertmanager's alert plus Grafana's links and values; `fingerprint` is sent by Grafana 9 and later."""

    values: dict[Name, float | None] | None = None
    valueString: Text = ""
    dashboardURL: Text = ""
    panelURL: Text = ""
    silenceURL: Text = ""


class GrafanaWebhook(_Vendor):
    """https://grafana.com/docs/grafana/latest/alerting/configure-notifications/manage-contact-points/integrations/webhook-notifier/"""

    receiver: Text = ""
    status: Literal["firing", "resolved"]
    orgId: int | None = None
    alerts: Annotated[list[GrafanaAlert], Field(max_length=MAX_ALERTS)]
    groupLabels: LabelSet = Field(default_factory=dict)
    commonLabels: LabelSet = Field(default_factory=dict)
    commonAnnotations: Annotations = Field(default_factory=dict)
    externalURL: Text = ""
    version: Text = ""
    groupKey: Text = ""
    truncatedAlerts: Annotated[int, Field(ge=0)] = 0
    title: Text = ""
    state: Text = ""
    message: Text = ""


# --- PagerDuty Events API v2 --------------------------------------------------------------------------------

PagerDutySeverity = Literal["critical", "error", "warning", "info"]
PagerDutyField = Annotated[str, StringConstraints(max_length=MAX_LABEL_VALUE)]  # these become labels
DedupKey = Annotated[str, StringConstraints(min_length=1, max_length=PAGERDUTY_DEDUP_KEY_MAX)]
RoutingKey = Annotated[
    str, StringConstraints(min_length=PAGERDUTY_ROUTING_KEY_LENGTH, max_length=PAGERDUTY_ROUTING_KEY_LENGTH)
]


class PagerDutyPayload(_Strict):
    """`payload` of an acknowledge or resolve event: optional there, and PagerDuty ignores it."""

    summary: Annotated[str, StringConstraints(min_length=1, max_length=PAGERDUTY_SUMMARY_MAX)] | None = None
    source: Annotated[str, StringConstraints(min_length=1, max_length=MAX_LABEL_VALUE)] | None = None
    severity: PagerDutySeverity | None = None
    timestamp: Timestamp | None = None
    component: PagerDutyField | None = None
    group: PagerDutyField | None = None
    class_: PagerDutyField | None = Field(default=None, alias="class")
    custom_details: dict[str, Any] | None = None


class PagerDutyTriggerPayload(PagerDutyPayload):
    """`payload` of a trigger: summary, source and severity required."""

    summary: Annotated[str, StringConstraints(min_length=1, max_length=PAGERDUTY_SUMMARY_MAX)]
    source: Annotated[str, StringConstraints(min_length=1, max_length=MAX_LABEL_VALUE)]
    severity: PagerDutySeverity


class _PagerDutyEvent(_Strict):
    """https://developer.pagerduty.com/docs/events-api-v2/trigger-events/ (`images`, `links`, `client`,
    `client_url` are accepted and ignored)."""

    routing_key: RoutingKey
    event_action: Literal["trigger", "acknowledge", "resolve"]
    dedup_key: DedupKey | None = None
    payload: PagerDutyPayload | None = None
    images: Annotated[list[dict[str, Any]], Field(max_length=100)] | None = None
    links: Annotated[list[dict[str, Any]], Field(max_length=100)] | None = None
    client: Text | None = None
    client_url: Text | None = None


class PagerDutyTrigger(_PagerDutyEvent):
    event_action: Literal["trigger"]
    payload: PagerDutyTriggerPayload


class PagerDutyFollowUp(_PagerDutyEvent):
    """Acknowledge or resolve: `dedup_key` names the alert it follows up."""

    event_action: Literal["acknowledge", "resolve"]
    dedup_key: DedupKey


PagerDutyEvent = PagerDutyTrigger | PagerDutyFollowUp


def parse_pagerduty(data: object) -> PagerDutyEvent:
    """Validate against the model `event_action` picks, so errors name fields, not union branches."""
    action = data.get("event_action") if isinstance(data, dict) else None
    if action == "trigger":
        return PagerDutyTrigger.model_validate(data)
    if action in ("acknowledge", "resolve"):
        return PagerDutyFollowUp.model_validate(data)
    _PagerDutyEvent.model_validate(data)  # raises: event_action is missing or not one of the three
    raise AssertionError("unreachable: event_action was validated as invalid")


# --- Generic JSON -------------------------------------------------------------------------------------------


class GenericAlert(_Strict):
    """Tocsin's own alert schema, for anything that can POST JSON (`POST /api/v1/alerts`, one or a list).

    `labels.alertname` is required; `fingerprint` defaults to a stable hash of the sorted labels, so the same
    labels are the same alert. Timestamps are RFC 3339 with an offset.
    """

    status: Literal["firing", "resolved"] = "firing"
    labels: AlertLabels
    annotations: Annotations = Field(default_factory=dict)
    summary: Text = ""
    fingerprint: Annotated[str, StringConstraints(min_length=1, max_length=MAX_FINGERPRINT)] | None = None
    starts_at: Timestamp | None = None
    ends_at: Timestamp | None = None


GenericAlerts = Annotated[list[GenericAlert], Field(min_length=1, max_length=MAX_ALERTS)]
_generic_list: TypeAdapter[list[GenericAlert]] = TypeAdapter(GenericAlerts)
# The request body the generic endpoint documents: one alert or a list of them.
GENERIC_BODY: TypeAdapter[GenericAlert | list[GenericAlert]] = TypeAdapter(GenericAlert | GenericAlerts)


def parse_generic(data: object) -> list[GenericAlert]:
    if isinstance(data, list):
        return _generic_list.validate_python(data)
    return [GenericAlert.model_validate(data)]


# --- Normalization ------------------------------------------------------------------------------------------


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


def _summary(annotations: Mapping[str, str]) -> str:
    return annotations.get("summary") or annotations.get("description") or ""


def _from_alertmanager_alert(source: AlertSource, alert: AlertmanagerAlert) -> NormalizedAlert:
    labels = alert.labels.as_dict()
    return NormalizedAlert(
        source=source,
        status=alert.status,
        labels=labels,
        annotations=dict(alert.annotations),
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
    `group`. The dedup_key names the alert, so a resolve without a payload finds the trigger's alert."""
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
                annotations=dict(alert.annotations),
                summary=alert.summary or _summary(alert.annotations),
                fingerprint=alert.fingerprint or labels_fingerprint(labels),
                starts_at=alert.starts_at,
                ends_at=alert.ends_at,
            )
        )
    return Batch(alerts=out)


ReceiverSource = Literal["alertmanager", "grafana", "pagerduty", "generic"]

NORMALIZERS: dict[ReceiverSource, Callable[[object], Batch]] = {
    "alertmanager": lambda data: alertmanager_alerts(AlertmanagerWebhook.model_validate(data)),
    "grafana": lambda data: grafana_alerts(GrafanaWebhook.model_validate(data)),
    "pagerduty": lambda data: Batch(alerts=[pagerduty_alert(parse_pagerduty(data))]),
    "generic": lambda data: generic_alerts(parse_generic(data)),
}


_TYPE_MESSAGES = {
    "model_type": "Input should be a JSON object",
    "model_attributes_type": "Input should be a JSON object",
    "dict_type": "Input should be a JSON object",
    "list_type": "Input should be a JSON array",
}


def describe_errors(err: ValidationError, limit: int = 20) -> list[str]:
    """`alerts.3.labels.alertname: Field required`, one line per error (at most `limit`), never the input.

    Path parts come from the payload (label names), so each is cut short; the root is called `body`.
    """
    lines = []
    for e in err.errors(include_url=False, include_input=False)[:limit]:
        path = ".".join(str(part)[:100] for part in e["loc"]) or "body"
        lines.append(f"{path}: {_TYPE_MESSAGES.get(e['type'], e['msg'])}")
    if err.error_count() > limit:
        lines.append(f"... and {err.error_count() - limit} more")
    return lines


def normalize(source: ReceiverSource, data: object) -> Batch:
    """Parsed JSON in, normalized alerts out; pydantic's ValidationError (with field paths) if it is invalid."""
    return NORMALIZERS[source](data)
