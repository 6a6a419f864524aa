"""The policy file's schema: the seed's configuration, as it is written, plus Tocsin's own knobs.

Every model forbids unknown keys: a typo in a policy must fail loudly at load time, not silently
drop an escalation step at 3 a.m.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    model_validator,
)

from tocsin.durations import Duration
from tocsin.policy.conditions import parse_condition
from tocsin.policy.fields import LOADING as LOADING  # the loader validates with it
from tocsin.policy.fields import ReplicaExpression, Template
from tocsin.policy.fields import Strict as _Strict
from tocsin.policy.postmortem import PostmortemPolicy
from tocsin.runbooks.models import Runbook
from tocsin.runbooks.steps import NAME as RUNBOOK_NAME

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


# --- the on-call roster ----------------------------------------------------------------------------------
# People, teams and rotations that escalation targets name; tocsin.roster resolves a target to people at an
# instant. Only the shape and the cross-references live here; the arithmetic of shifts is in tocsin.roster.

ROSTER_NAME = r"^[A-Za-z0-9][A-Za-z0-9_-]*$"
RosterName = Annotated[str, Field(pattern=ROSTER_NAME)]
_CHANNEL = re.compile(r"^#[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_PHONE_SEPARATORS = re.compile(r"[\s().-]")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,20}$")
_PAGERDUTY_USER = re.compile(r"^[A-Z0-9]{5,20}$")


def _timezone(value: str) -> str:
    """An IANA name that this machine's zone database knows ('Europe/Berlin', 'UTC')."""
    problem = f"unknown timezone {value!r}: use an IANA name such as 'Europe/Berlin', 'America/New_York' or 'UTC'"
    if value == "localtime":  # a file some systems have, not a zone: it means whatever the machine says
        raise ValueError(problem)
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(problem) from None
    return value


def _phone(value: object) -> object:
    if isinstance(value, int) and not isinstance(value, bool):
        # YAML reads +4915112345678 as the integer 4915112345678: the '+' is gone before we see it.
        raise ValueError(f"quote the phone number: YAML reads it as the number {value} (write e.g. '+4915112345678')")
    if not isinstance(value, str):
        return value  # pydantic says "a valid string"
    number = _PHONE_SEPARATORS.sub("", value)
    if not _E164.match(number):
        raise ValueError(
            f"{value!r} is not an E.164 phone number: '+', country code and number, 7 to 15 digits "
            "(e.g. '+4915112345678')"
        )
    return number


def _matching(pattern: re.Pattern[str], example: str) -> AfterValidator:
    def check(value: str) -> str:
        if not pattern.match(value):
            raise ValueError(f"{value!r} does not look like {example}")
        return value

    return AfterValidator(check)


def _time_of_day(value: object) -> object:
    if isinstance(value, int) and not isinstance(value, bool):
        # YAML 1.1 reads an unquoted 9:30 as 570 (base 60), and pydantic would take a number as seconds.
        raise ValueError("write the time of day in quotes, e.g. '09:00' (YAML reads an unquoted 9:30 as a number)")
    return value


def _naive_time(value: time) -> time:
    if value.tzinfo is not None:
        raise ValueError("a handoff time has no offset: the rotation's timezone says where it is")
    return value


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{value.isoformat()} has no UTC offset: write e.g. 2025-03-03T09:00:00+01:00")
    return value


TimeZoneName = Annotated[str, AfterValidator(_timezone)]
PhoneNumber = Annotated[str, BeforeValidator(_phone)]
TimeOfDay = Annotated[time, BeforeValidator(_time_of_day), AfterValidator(_naive_time)]
AwareTime = Annotated[datetime, AfterValidator(_aware)]


class Person(_Strict):
    """Someone who can be paged. The roster's key is how policies and overrides name them."""

    name: str | None = Field(default=None, description="display name (default: the roster key)")
    timezone: TimeZoneName = Field(description="where they live, so a page can say what time it is for them")
    email: Annotated[str, _matching(_EMAIL, "an email address")] | None = None
    phone: PhoneNumber | None = Field(default=None, description="E.164, e.g. '+4915112345678' (separators dropped)")
    slack: Annotated[str, _matching(_SLACK_USER, "a Slack member id such as 'U024BE7LH'")] | None = None
    pagerduty: Annotated[str, _matching(_PAGERDUTY_USER, "a PagerDuty user id such as 'PXPGF42'")] | None = None

    @model_validator(mode="after")
    def _reachable(self) -> Person:
        if not (self.email or self.phone or self.slack or self.pagerduty):
            raise ValueError("a person needs at least one contact method: email, phone, slack or pagerduty")
        return self


class Team(_Strict):
    members: list[RosterName] = Field(default_factory=list)
    channel: Annotated[str, _matching(_CHANNEL, "a channel such as '#sre'")] | None = None


class Rotation(_Strict):
    """Members take turns, one shift each, in order; shift 0 starts on `start` at `handoff` with members[0].

    Handoffs happen at `handoff` wall-clock time in `timezone`, so they follow daylight saving time. A
    handoff time that a spring-forward skips happens when the clocks jump (02:30 becomes 03:30); one that
    a fall-back repeats happens the first time round.
    """

    type: Literal["daily", "weekly"]
    handoff: TimeOfDay = time(9, 0)
    timezone: TimeZoneName
    start: date = Field(description="the date of the first handoff (for weekly, also the weekday of each)")
    members: list[RosterName] = Field(default_factory=list, description="in turn order; may be empty")

    @property
    def period_days(self) -> int:
        return 1 if self.type == "daily" else 7


class RosterOverride(_Strict):
    """`by` is on call instead of `covering` (or instead of whoever is scheduled, without it), from..until.

    When several overrides hold at once, the one that starts latest wins; on a tie, the one written last
    (an overrides file comes after the policy's own list).
    """

    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )

    rotation: RosterName
    by: RosterName
    covering: RosterName | None = None
    start: AwareTime = Field(alias="from")
    end: AwareTime = Field(alias="until")
    reason: str = ""

    @model_validator(mode="after")
    def _sane(self) -> RosterOverride:
        if self.end <= self.start:
            raise ValueError(f"'until' ({self.end.isoformat()}) must be after 'from' ({self.start.isoformat()})")
        if self.covering == self.by:
            raise ValueError(f"{self.by} cannot cover themselves")
        return self


class Roster(_Strict):
    people: dict[RosterName, Person] = Field(default_factory=dict)
    teams: dict[RosterName, Team] = Field(default_factory=dict)
    rotations: dict[RosterName, Rotation] = Field(default_factory=dict)
    overrides: list[RosterOverride] = Field(default_factory=list)

    def is_empty(self) -> bool:
        return not (self.people or self.teams or self.rotations)

    def target_kind(self, target: str) -> Literal["person", "team", "rotation", "channel"] | None:
        """What an escalation target names: '#incidents', 'primary_oncall', or with a kind, 'team:sre'."""
        if _CHANNEL.match(target):
            return "channel"
        prefix, sep, name = target.partition(":")
        if sep:
            kind = self.kind_of(name)
            return kind if kind == prefix else None
        return self.kind_of(target)

    def kind_of(self, name: str) -> Literal["person", "team", "rotation"] | None:
        if name in self.people:
            return "person"
        if name in self.teams:
            return "team"
        return "rotation" if name in self.rotations else None

    def override_problems(self, override: RosterOverride) -> list[tuple[str, str]]:
        """(field, problem) for each name the override uses that this roster does not have."""
        found: list[tuple[str, str]] = []
        rotation = self.rotations.get(override.rotation)
        if rotation is None:
            found.append(("rotation", f"unknown rotation {override.rotation!r}{_known(self.rotations)}"))
        if override.by not in self.people:
            found.append(("by", f"unknown person {override.by!r}{_known(self.people)}"))
        if override.covering is not None:
            if override.covering not in self.people:
                found.append(("covering", f"unknown person {override.covering!r}{_known(self.people)}"))
            elif rotation is not None and override.covering not in rotation.members:
                # It could never apply: say so now, not when nobody turns up.
                found.append(("covering", f"{override.covering} is not a member of rotation {override.rotation}"))
        return found

    def problems(self) -> list[tuple[str, str]]:
        """(dotted path under `roster`, problem) for every reference that does not resolve."""
        found: list[tuple[str, str]] = []
        for kind, names in (("team", self.teams), ("rotation", self.rotations)):
            for name in names:
                other = "person" if name in self.people else "team" if kind == "rotation" and name in self.teams else ""
                if other:
                    found.append((f"{kind}s.{name}", f"{name!r} is also a {other}: a target name must mean one thing"))
        for where, members in [
            *((f"teams.{n}", t.members) for n, t in self.teams.items()),
            *((f"rotations.{n}", r.members) for n, r in self.rotations.items()),
        ]:
            for i, member in enumerate(members):
                if member not in self.people:
                    found.append((f"{where}.members.{i}", f"unknown person {member!r}{_known(self.people)}"))
        for i, override in enumerate(self.overrides):
            found.extend((f"overrides.{i}.{field}", problem) for field, problem in self.override_problems(override))
        return found


def _known(names: Iterable[str]) -> str:
    listed = ", ".join(names)
    return f" (known: {listed})" if listed else " (there are none)"


class Policy(_Strict):
    version: Literal[1] = 1
    lifecycle: Lifecycle = Field(default_factory=Lifecycle)
    intake: Intake = Field(default_factory=Intake)
    detection: Detection = Field(default_factory=Detection)
    incident_classification: IncidentClassification
    automated_response_workflows: dict[str, ResponseWorkflow] = Field(default_factory=dict)
    escalation_policies: EscalationPolicies
    # Tocsin's addition: who escalation targets are (tocsin.roster resolves them). Empty: targets stay names.
    roster: Roster = Field(default_factory=Roster)
    # Tocsin's addition: what `execute_runbook` actions run (tocsin.runbooks). A policy without any (the seed)
    # may still name runbooks there: they are then reported as undefined when one is requested, not at load.
    runbooks: dict[Annotated[str, Field(pattern=RUNBOOK_NAME)], Runbook] = Field(default_factory=dict)
    # Tocsin's addition: evidence, objectives, review and follow-through of post-mortems (tocsin.postmortem).
    postmortem: PostmortemPolicy = Field(default_factory=PostmortemPolicy)

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
                        f"{action.runbook!r}{_known(self.runbooks)}"
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
