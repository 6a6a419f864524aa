"""The payloads each source documents, as strict pydantic models (their translation: tocsin.intake.normalize).

Strictness: no type coercion (a label value is a string, `truncatedAlerts` an integer, timestamps RFC 3339
strings with an offset), unknown keys rejected, except where a vendor adds fields over time (Alertmanager and
Grafana webhooks, their alerts): those keys are accepted and ignored. Every collection and string has a bound,
so the shape of a hostile payload cannot make us allocate beyond the body size limit, and every limit triage
and Temporal enforce further on is checked here (tocsin.intake.limits), so a payload that would fail there
is refused with its field path instead. Nothing here does I/O.
"""

from __future__ import annotations

import re
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
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from tocsin.intake.limits import (
    ALERTNAME_MAX,
    MAX_ALERTS,
    MAX_FINGERPRINT,
    MAX_LABEL_VALUE,
    PLAIN,
    TITLE_MAX,
    AlertAnnotations,
    AlertLabels,
    Annotations,
    Fingerprint,
    LabelSet,
    LabelValue,
    Name,
    ServiceName,
    Text,
    Title,
)

PAGERDUTY_SUMMARY_MAX = TITLE_MAX
PAGERDUTY_DEDUP_KEY_MAX = 255
PAGERDUTY_ROUTING_KEY_LENGTH = 32

ReceiverSource = Literal["alertmanager", "grafana", "pagerduty", "generic"]


def _rfc3339_string(value: object) -> object:
    # JSON has no timestamp type: accept only strings, never numbers taken as epoch seconds.
    if not isinstance(value, str):
        raise ValueError("Input should be an RFC 3339 timestamp string")
    return value


Timestamp = Annotated[AwareDatetime, Field(strict=False), BeforeValidator(_rfc3339_string)]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class _Vendor(BaseModel):
    """A vendor's object: known keys strictly typed, keys added by newer versions accepted and ignored."""

    model_config = ConfigDict(strict=True, extra="allow", frozen=True)


# --- Alertmanager (webhook_config, payload version 4) -------------------------------------------------------


class AlertmanagerAlert(_Vendor):
    status: Literal["firing", "resolved"]
    labels: AlertLabels
    annotations: AlertAnnotations = Field(default_factory=AlertAnnotations)
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
DedupKey = Annotated[str, StringConstraints(min_length=1, max_length=PAGERDUTY_DEDUP_KEY_MAX), PLAIN]
RoutingKey = Annotated[
    str, StringConstraints(min_length=PAGERDUTY_ROUTING_KEY_LENGTH, max_length=PAGERDUTY_ROUTING_KEY_LENGTH)
]
Summary = Annotated[Title, StringConstraints(min_length=1)]
Source = Annotated[str, StringConstraints(min_length=1, max_length=MAX_LABEL_VALUE), PLAIN]
PagerDutyClass = Annotated[str, StringConstraints(max_length=ALERTNAME_MAX), PLAIN]  # becomes the alertname
_SERVICE: TypeAdapter[str] = TypeAdapter(ServiceName)


class PagerDutyPayload(_Strict):
    """`payload` of an acknowledge or resolve event: optional there, and PagerDuty ignores it.

    The incident's service is `component`, else `source`: each is held to the service's bounds only when it
    is the one that becomes it (`component` is declared first so that `source`'s check can see it)."""

    summary: Summary | None = None
    component: ServiceName | None = None
    source: Source | None = None
    severity: PagerDutySeverity | None = None
    timestamp: Timestamp | None = None
    group: LabelValue | None = None
    class_: PagerDutyClass | None = Field(default=None, alias="class")
    custom_details: dict[str, Any] | None = None

    @field_validator("source")
    @classmethod
    def _source_as_service(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and not info.data.get("component"):
            try:
                _SERVICE.validate_python(value)
            except ValidationError as err:
                # Report the service's own error on this field, not as a nested "Value error".
                first = err.errors(include_url=False)[0]
                raise PydanticCustomError(first["type"], first["msg"]) from None
        return value


class PagerDutyTriggerPayload(PagerDutyPayload):
    """`payload` of a trigger: summary, source and severity required."""

    summary: Summary
    source: Source
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
    annotations: AlertAnnotations = Field(default_factory=AlertAnnotations)
    summary: Title = ""
    fingerprint: Annotated[str, StringConstraints(min_length=1, max_length=MAX_FINGERPRINT), PLAIN] | None = None
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


# --- Errors -------------------------------------------------------------------------------------------------

_TYPE_MESSAGES = {
    "model_type": "Input should be a JSON object",
    "model_attributes_type": "Input should be a JSON object",
    "dict_type": "Input should be a JSON object",
    "list_type": "Input should be a JSON array",
}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _path_part(part: str | int) -> str:
    # A label name is the sender's text: cut short, and its control characters shown, not written to the log.
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(part)[:100])


def describe_errors(err: ValidationError, limit: int = 20) -> list[str]:
    """`alerts.3.labels.alertname: Field required`, one line per error (at most `limit`), never the input.

    Path parts come from the payload (label names), so each is cut short; the root is called `body`.
    """
    lines = []
    for e in err.errors(include_url=False, include_input=False)[:limit]:
        path = ".".join(_path_part(part) for part in e["loc"]) or "body"
        lines.append(f"{path}: {_TYPE_MESSAGES.get(e['type'], e['msg'])}")
    if err.error_count() > limit:
        lines.append(f"... and {err.error_count() - limit} more")
    return lines
