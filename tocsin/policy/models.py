"""The policy file's schema: the seed's configuration, as it is written, plus Tocsin's own knobs.

Every model forbids unknown keys: a typo in a policy must fail loudly at load time, not silently
drop an escalation step at 3 a.m.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, model_validator

from tocsin.durations import Duration
from tocsin.policy.conditions import parse_condition
from tocsin.policy.templating import check_template

SEVERITY_PATTERN = r"^sev[1-9]$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


LOADING = {"loading_policy_file": True}


def _template(value: str, info: ValidationInfo) -> str:
    # Compiled when a policy file is loaded, not each time a workflow decodes its snapshot:
    # Jinja's compiler has no place in the workflow sandbox, and a snapshot was checked when it was made.
    if info.context and info.context.get("loading_policy_file"):
        check_template(value)
    return value


def _condition(value: str) -> str:
    parse_condition(value)
    return value


Template = Annotated[str, AfterValidator(_template)]
ConditionText = Annotated[str, AfterValidator(_condition)]
# The seed's automatic actions; the channels issue gives each a real vendor, until then they go to the outbox.
AutomaticAction = Literal[
    "create_war_room",
    "notify_executives",
    "trigger_emergency_response",
    "start_status_page_incident",
    "create_slack_channel",
    "notify_team",
    "notify_stakeholders",
    "create_ticket",
    "schedule_fix",
]

_REPLICAS_SEED = re.compile(r"^\{\{\s*\.current_replicas\s*(.*?)\s*\}\}$")
_REPLICAS = re.compile(r"^(current(\s*[*+-]\s*\d+)?|\d+)$")


def _replicas(value: str | int) -> str:
    """`current * 2`, `current + 1` or a fixed count; the seed's Go-style `{{ .current_replicas * 2 }}` is accepted.

    It is not a label template: the runbook engine evaluates it against the live replica count.
    """
    text = str(value).strip()
    seed = _REPLICAS_SEED.match(text)
    if seed:
        text = f"current {seed.group(1)}".strip()
    text = re.sub(r"\s+", " ", text)
    if not _REPLICAS.match(text):
        raise ValueError(f"replicas {value!r} must be a count or 'current', 'current * N', 'current + N'")
    return text


ReplicaExpression = Annotated[str | int, AfterValidator(_replicas)]


class SeverityLevel(_Strict):
    name: str
    description: str = ""
    response_time: Duration = Field(description="acknowledgement target, from the incident's opening")
    escalation_time: Duration = Field(description="mitigation target, from the incident's opening")
    stakeholders: list[str] = Field(default_factory=list)
    automatic_actions: list[AutomaticAction] = Field(default_factory=list)


class IncidentClassification(_Strict):
    severity_levels: dict[Annotated[str, Field(pattern=SEVERITY_PATTERN)], SeverityLevel]

    @model_validator(mode="after")
    def _non_empty(self) -> IncidentClassification:
        if not self.severity_levels:
            raise ValueError("at least one severity level is required")
        return self


class Trigger(_Strict):
    alert: str = Field(description="the condition as people say it, e.g. 'error_rate > 10%'")
    duration: Duration = Field(description="how long the condition must hold before an incident opens")
    # Tocsin's additions: the alert's name (Prometheus' `alertname`) and the PromQL that states the
    # condition, so Prometheus rules and Tocsin's own detector share one source of truth.
    name: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    expr: str | None = None


class CreateIncident(_Strict):
    type: Literal["create_incident"]
    severity: str
    title: Template


class ExecuteRunbook(_Strict):
    type: Literal["execute_runbook"]
    runbook: str
    parameters: dict[str, Template] = Field(default_factory=dict)


class ScaleResources(_Strict):
    type: Literal["scale_resources"]
    target: Template
    replicas: ReplicaExpression


class NotifyStakeholders(_Strict):
    type: Literal["notify_stakeholders"]
    channels: list[str] = Field(min_length=1)
    message: Template


class EnableReadReplicas(_Strict):
    type: Literal["enable_read_replicas"]
    database: Template


class ThrottleNonCriticalQueries(_Strict):
    type: Literal["throttle_non_critical_queries"]
    priority_threshold: Literal["low", "medium", "high"]


ResponseAction = Annotated[
    CreateIncident
    | ExecuteRunbook
    | ScaleResources
    | NotifyStakeholders
    | EnableReadReplicas
    | ThrottleNonCriticalQueries,
    Field(discriminator="type"),
]


class ResponseWorkflow(_Strict):
    # Tocsin's addition: which alerts belong to this workflow, label -> accepted values.
    match: dict[str, list[str]] = Field(default_factory=dict)
    triggers: list[Trigger] = Field(default_factory=list)
    actions: list[ResponseAction] = Field(min_length=1)

    @property
    def create_incident(self) -> CreateIncident | None:
        return next((a for a in self.actions if isinstance(a, CreateIncident)), None)


ChannelType = Literal["pagerduty", "phone", "sms", "slack", "email", "teams", "webhook"]


class PrimaryStep(_Strict):
    type: ChannelType
    escalation_delay: Duration
    retry_count: int = Field(default=1, ge=1, le=20, description="notifications through this step, in all")
    target: str = "primary_oncall"


class ManagementStep(_Strict):
    type: ChannelType
    channel: str | None = None
    recipients: list[str] = Field(default_factory=list)
    conditions: list[ConditionText] = Field(min_length=1)

    @model_validator(mode="after")
    def _addressed(self) -> ManagementStep:
        if self.type == "slack" and not self.channel:
            raise ValueError("a slack step needs 'channel'")
        if self.type == "email" and not self.recipients:
            raise ValueError("an email step needs 'recipients'")
        return self

    @property
    def target(self) -> str:
        return self.channel or ", ".join(self.recipients) or self.type


class EscalationPolicies(_Strict):
    primary_oncall: list[PrimaryStep] = Field(min_length=1)
    management_escalation: list[ManagementStep] = Field(default_factory=list)


class Lifecycle(_Strict):
    """Tocsin's choices where the seed is silent; each has a default an SRE would expect."""

    default_severity: str = "sev3"
    paging_severities: list[str] = Field(default_factory=lambda: ["sev1", "sev2"])
    postmortem_severities: list[str] = Field(default_factory=lambda: ["sev1", "sev2"])
    delivery_timeout: Duration = timedelta(seconds=30)
    delivery_attempts: int = Field(default=5, ge=1, le=50)


class Intake(_Strict):
    """How received alerts become incidents: grouping, severity, and when resolved alerts close one."""

    # Alerts with equal values of these labels are one incident (a PagerDuty dedup_key overrides).
    group_by: list[str] = Field(default_factory=lambda: ["alertname", "service", "environment"], min_length=1)
    severity_label: str = "severity"
    # Label value -> severity, for alerts whose response workflow does not set one.
    severity_map: dict[str, str] = Field(
        default_factory=lambda: {
            "critical": "sev1",
            "page": "sev1",
            "error": "sev2",
            "high": "sev2",
            "warning": "sev3",
            "medium": "sev3",
            "info": "sev4",
            "low": "sev4",
        }
    )
    # Once every alert of an incident has resolved, it resolves itself after this quiet period.
    flap_window: Duration = timedelta(minutes=5)
    # An acknowledged incident stays open for its humans to resolve, even when its alerts clear.
    hold_when_acknowledged: bool = True


class Detection(_Strict):
    """Tocsin's own detector: how often it evaluates the triggers' PromQL against TOCSIN_PROMETHEUS_URL."""

    # Each run of the `tocsin-detector` schedule evaluates every named trigger's expr once.
    interval: Duration = timedelta(seconds=30)
    # Per query, in Prometheus (its `timeout` parameter) and on the wire.
    query_timeout: Duration = timedelta(seconds=10)
    # Series beyond this many per trigger are not tracked (the lowest fingerprints are kept, stably).
    max_series_per_trigger: int = Field(default=1000, ge=1, le=1000)

    @model_validator(mode="after")
    def _sane(self) -> Detection:
        if self.interval < timedelta(seconds=1):
            raise ValueError("interval must be at least 1 second")
        if not timedelta(seconds=1) <= self.query_timeout <= timedelta(minutes=2):
            raise ValueError("query_timeout must be between 1 second and 2 minutes")
        return self


class Policy(_Strict):
    version: Literal[1] = 1
    lifecycle: Lifecycle = Field(default_factory=Lifecycle)
    intake: Intake = Field(default_factory=Intake)
    detection: Detection = Field(default_factory=Detection)
    incident_classification: IncidentClassification
    automated_response_workflows: dict[str, ResponseWorkflow] = Field(default_factory=dict)
    escalation_policies: EscalationPolicies

    @model_validator(mode="after")
    def _references(self) -> Policy:
        known = self.incident_classification.severity_levels
        names = ", ".join(known)

        def need(severity: str, where: str, note: str = "") -> None:
            if severity not in known:
                raise ValueError(f"{where}: unknown severity {severity!r} (defined: {names}){note}")

        for field in ("default_severity", "paging_severities", "postmortem_severities"):
            # A policy that never wrote `lifecycle` should hear that a default is what fails.
            note = "" if field in self.lifecycle.model_fields_set else f"; Tocsin's default, set lifecycle.{field}"
            value = getattr(self.lifecycle, field)
            if isinstance(value, str):
                need(value, f"lifecycle.{field}", note)
            else:
                for i, sev in enumerate(value):
                    need(sev, f"lifecycle.{field}.{i}", note)
        if "severity_map" in self.intake.model_fields_set:
            # Tocsin's default map names sev1..sev4; a policy with fewer levels just uses the ones it has.
            for value, sev in self.intake.severity_map.items():
                need(sev, f"intake.severity_map.{value}")
        for name, flow in self.automated_response_workflows.items():
            for i, action in enumerate(flow.actions):
                if isinstance(action, CreateIncident):
                    need(action.severity, f"automated_response_workflows.{name}.actions.{i}.severity")
        for i, step in enumerate(self.escalation_policies.management_escalation):
            for j, text in enumerate(step.conditions):
                # "severity == 'sev7'" would never hold: the step would silently never fire.
                condition = parse_condition(text)
                if condition.field == "severity":
                    need(str(condition.value), f"escalation_policies.management_escalation.{i}.conditions.{j}")
        return self

    def severity(self, name: str) -> SeverityLevel:
        return self.incident_classification.severity_levels[name]

    def pages(self, severity: str) -> bool:
        return severity in self.lifecycle.paging_severities
