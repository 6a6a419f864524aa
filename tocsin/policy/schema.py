"""The policy file's schema: the seed's configuration, as it is written, plus Tocsin's own knobs.

Every model forbids unknown keys: a typo in a policy must fail loudly at load time, not silently
drop an escalation step at 3 a.m.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    Field,
    ValidationInfo,
    model_validator,
)

from tocsin.durations import Duration
from tocsin.policy.conditions import parse_condition
from tocsin.policy.fields import LOADING as LOADING  # the loader validates with it
from tocsin.policy.fields import ReplicaExpression, Template
from tocsin.policy.fields import Strict as _Strict
from tocsin.policy.heartbeats import Heartbeats, heartbeat_problems
from tocsin.policy.intake import Detection, Intake
from tocsin.policy.limits import Limits
from tocsin.policy.maintenance import ScheduledWindow, window_problems
from tocsin.policy.postmortem import PostmortemPolicy
from tocsin.policy.roster_schema import Roster, RosterOverride, known_hint
from tocsin.policy.status_page import StatusPagePolicy
from tocsin.runbook.schema import Runbook
from tocsin.runbook.steps import NAME as RUNBOOK_NAME

SEVERITY_PATTERN = r"^sev[1-9]$"


def _condition(value: str) -> str:
    parse_condition(value)
    return value


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


class SeverityLevel(_Strict):
    name: str
    description: str = ""
    response_time: Duration = Field(description="acknowledgement target, from the incident's opening")
    escalation_time: Duration = Field(description="mitigation target, from the incident's opening")
    # Acknowledged but neither mitigated nor resolved within this: the owner is paged again, then the chain
    # resumes. Unset: an acknowledgement holds until the incident moves on.
    ack_timeout: Duration | None = None
    stakeholders: list[str] = Field(default_factory=list)
    automatic_actions: list[AutomaticAction] = Field(default_factory=list)
    # Temporal task-queue priority of its incidents and their pages, 1 first (tocsin/policy/priority.py).
    priority: int | None = Field(default=None, ge=1, le=5)


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


class Policy(_Strict):
    version: Literal[1] = 1
    lifecycle: Lifecycle = Field(default_factory=Lifecycle)
    intake: Intake = Field(default_factory=Intake)
    detection: Detection = Field(default_factory=Detection)
    # Tocsin's addition: how much one incident keeps of what senders post (tocsin.policy.limits).
    limits: Limits = Field(default_factory=Limits)
    incident_classification: IncidentClassification
    automated_response_workflows: dict[str, ResponseWorkflow] = Field(default_factory=dict)
    escalation_policies: EscalationPolicies
    # Tocsin's addition: who escalation targets are (tocsin.roster resolves them). Empty: targets stay names.
    roster: Roster = Field(default_factory=Roster)
    # Tocsin's addition: what `execute_runbook` actions run (tocsin.runbook). A policy without any (the seed)
    # may still name runbooks there: they are then reported as undefined when one is requested, not at load.
    runbooks: dict[Annotated[str, Field(pattern=RUNBOOK_NAME)], Runbook] = Field(default_factory=dict)
    # Tocsin's addition: evidence, objectives, review and follow-through of post-mortems (tocsin.postmortem).
    postmortem: PostmortemPolicy = Field(default_factory=PostmortemPolicy)
    status_page: StatusPagePolicy = Field(default_factory=StatusPagePolicy)  # public page (status_page.py)
    heartbeats: Heartbeats = Field(default_factory=dict)  # dead man's switches (tocsin.policy.heartbeats)
    maintenance: list[ScheduledWindow] = Field(default_factory=list, max_length=100)  # tocsin.policy.maintenance

    @model_validator(mode="after")
    def _references(self, info: ValidationInfo) -> Policy:
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
        # Only what a person wrote in a file: a snapshot decoded from JSON marks every field as set, and
        # Tocsin's default map names sev1..sev4 though a policy may define fewer.
        loading = bool(info.context and info.context.get("loading_policy_file"))
        if loading and "severity_map" in self.intake.model_fields_set:
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
        for problem in [*heartbeat_problems(self.heartbeats, known), *window_problems(self.maintenance)]:
            raise ValueError(problem)
        self._roster_references()
        self._runbook_references()
        return self

    def _runbook_references(self) -> None:
        if not self.runbooks:
            return  # the seed names runbooks it does not define: see the `runbooks` field
        for name, flow in self.automated_response_workflows.items():
            for i, action in enumerate(flow.actions):
                if isinstance(action, ExecuteRunbook) and action.runbook not in self.runbooks:
                    raise ValueError(
                        f"automated_response_workflows.{name}.actions.{i}.runbook: unknown runbook "
                        f"{action.runbook!r}{known_hint(self.runbooks)}"
                    )
        is_target = None if self.roster.is_empty() else (lambda who: self.roster.target_kind(who) is not None)
        for name, runbook in self.runbooks.items():
            for where, problem in runbook.problems(list(self.incident_classification.severity_levels), is_target):
                raise ValueError(f"runbooks.{name}.{where}: {problem}")

    def _roster_references(self) -> None:
        problems = self.roster.problems()
        if problems:
            where, problem = problems[0]
            raise ValueError(f"roster.{where}: {problem}")
        if self.roster.is_empty():
            return  # a policy without a roster pages targets by name, as before
        for i, step in enumerate(self.escalation_policies.primary_oncall):
            if self.roster.target_kind(step.target) is None:
                raise ValueError(
                    f"escalation_policies.primary_oncall.{i}.target: {step.target!r} is no person, team or rotation "
                    "of the roster, nor a #channel"
                )

    def with_overrides(self, overrides: Sequence[RosterOverride]) -> Policy:
        """This policy with `overrides` after the roster's own (so they win ties); ValueError if one does not fit."""
        if not overrides:
            return self
        roster = self.roster.model_copy(update={"overrides": [*self.roster.overrides, *overrides]})
        problems = roster.problems()
        if problems:
            where, problem = problems[0]
            raise ValueError(f"roster.{where}: {problem}")
        return self.model_copy(update={"roster": roster})

    def severity(self, name: str) -> SeverityLevel:
        return self.incident_classification.severity_levels[name]

    def pages(self, severity: str) -> bool:
        return severity in self.lifecycle.paging_severities
