"""Runbook steps, one model per registered action, discriminated by `action:`.

Parameters are label templates (sandboxed Jinja2, `{{ $labels.service }}`), rendered when a runbook is
requested (tocsin.runbook.planner), never inside a workflow. Secrets are referenced by environment variable
name (`{secret: TOCSIN_ADMIN_TOKEN}`) and read by the worker that executes the step; a policy never holds one.

A step that changes something may declare `compensate:`, a step of a compensating kind (scale back, undo
the rollout, call the disabling endpoint, tell someone). A compensation of a Kubernetes step may leave out
`deployment` and `namespace` (they default to the step's own) and `name` (default `undo-<step>`);
`replicas: previous` scales back to the count the step found.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    ValidationInfo,
    field_validator,
    model_validator,
)

from tocsin.durations import Duration
from tocsin.policy.fields import Strict, Template, loading_file, normalise_replicas
from tocsin.policy.templating import check_template
from tocsin.runbook.registry import OTHERWISE, located_error, registered_action
from tocsin.runbook.thresholds import normalise_threshold

NAME = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$"
_ENV_NAME = r"^[A-Z_][A-Z0-9_]*$"
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
# A header whose name says it carries a credential takes its value from a secret, never from the policy.
_SENSITIVE_HEADER = re.compile(r"auth|token|secret|key|passw|cookie|session|signature|credential", re.IGNORECASE)
_CREDENTIAL_VALUE = re.compile(r"^\s*(bearer|basic|digest|token|apikey)\s+\S", re.IGNORECASE)
# `${NAME}` at the start of a URL: the base, substituted from the worker's environment when the step runs.
URL_BASE = re.compile(r"^\$\{([A-Z_][A-Z0-9_]*)\}")
LITERAL_ORIGIN = re.compile(r"^https?://[^/{}$?#@]+(?=$|[/?#])")

Outcome = Literal["approve", "reject"]
StepName = Annotated[str, Field(pattern=NAME)]
ThresholdText = Annotated[str, AfterValidator(normalise_threshold)]


def _scale_replicas(value: str | int) -> str:
    return "previous" if str(value).strip() == "previous" else normalise_replicas(value)


ScaleReplicas = Annotated[str | int, AfterValidator(_scale_replicas)]


class Step(Strict):
    """What every step has: a name unique within its runbook (compensations included)."""

    name: StepName
    # Why the step is there, for the dry run and the timeline.
    description: str = ""


class KubernetesTarget(Step):
    deployment: Template
    namespace: Template


class ScaleStep(KubernetesTarget):
    """Set a deployment's replicas through the scale subresource: a count, `current * 2`, `current + N`."""

    action: Literal["kubernetes.scale"]
    replicas: ScaleReplicas
    # The step's own ceiling; the lower of it and guardrails.max_replicas applies.
    max_replicas: int | None = Field(default=None, ge=0, le=10_000)
    wait_for_rollout: bool = False
    timeout: Duration | None = None
    compensate: Compensation | None = None


class RolloutRestartStep(KubernetesTarget):
    """`kubectl rollout restart`: a new rollout with the same template (restartedAt annotation)."""

    action: Literal["kubernetes.rollout_restart"]
    wait_for_rollout: bool = True
    timeout: Duration | None = None
    compensate: Compensation | None = None


class RolloutUndoStep(KubernetesTarget):
    """`kubectl rollout undo`: the template of the previous revision (or `to_revision`) again."""

    action: Literal["kubernetes.rollout_undo"]
    to_revision: int | None = Field(default=None, ge=1)
    wait_for_rollout: bool = True
    timeout: Duration | None = None
    compensate: Compensation | None = None


class SecretRef(Strict):
    """A header value read from the worker's environment (`NAME`, or the file `NAME_FILE` names) at run time."""

    secret: str = Field(pattern=_ENV_NAME)
    prefix: str = Field(default="", description="put before the secret, e.g. 'Bearer '")


HttpMethod = Annotated[
    Literal["GET", "POST", "PUT", "PATCH", "DELETE"],
    BeforeValidator(lambda v: v.upper() if isinstance(v, str) else v),
]
StatusCodes = Annotated[
    list[Annotated[int, Field(ge=100, le=599)]], BeforeValidator(lambda v: [v] if isinstance(v, int) else v)
]


class HttpStep(Step):
    """A request to an admin endpoint: enable read replicas, throttle low-priority queries, and back.

    `url` is a label template that starts with a literal `http(s)://host` or with `${NAME}`, a base URL
    the worker reads from its environment when the step runs (so it is never in the policy or a history).
    """

    action: Literal["http"]
    method: HttpMethod = "POST"
    url: Template
    headers: dict[str, SecretRef | Template] = Field(default_factory=dict)
    # A mapping is sent as JSON (its strings are label templates); a string is sent as it renders.
    body: dict[str, JsonValue] | Template | None = None
    # The statuses that mean success; empty: any 2xx.
    expect: StatusCodes = Field(default_factory=list)
    timeout: Duration | None = None
    compensate: Compensation | None = None
    # The worker refuses to send to loopback (127.0.0.0/8, ::1) and link-local addresses (169.254.0.0/16,
    # fe80::/10, and with them the cloud metadata endpoints) unless the step says so here, explicitly.
    allow_loopback: bool = False
    allow_link_local: bool = False

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        base = URL_BASE.match(url)
        if url.count("${") > (1 if base else 0):
            raise ValueError("'${NAME}' may only start the URL, as its base (e.g. '${TOCSIN_DB_ADMIN_URL}/replicas')")
        rest = url[base.end() :] if base else url
        if base and rest and rest[0] not in "/?":
            raise ValueError(f"after ${{{base.group(1)}}} comes a path starting with '/' (or '?'), not {rest!r}")
        if not base and not LITERAL_ORIGIN.match(url):
            raise ValueError(
                "the URL must start with a literal http(s)://host (no template, no user:password@) or with ${NAME}"
            )
        return url

    @field_validator("headers")
    @classmethod
    def _headers(cls, headers: dict[str, SecretRef | str]) -> dict[str, SecretRef | str]:
        for name, value in headers.items():
            if not _HEADER_NAME.match(name):
                raise located_error((name,), name, f"{name!r} is not an HTTP header name")
            if isinstance(value, str) and (_SENSITIVE_HEADER.search(name) or _CREDENTIAL_VALUE.match(value)):
                raise located_error(
                    (name,),
                    "[redacted]",
                    "a credential is never written in a policy: reference the environment variable that holds it, "
                    "e.g. {secret: TOCSIN_ADMIN_TOKEN, prefix: 'Bearer '}",
                )
        return headers

    @field_validator("body")
    @classmethod
    def _body(cls, body: Any, info: ValidationInfo) -> Any:
        if loading_file(info):
            for text in _strings(body):
                check_template(text)
        return body


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


class VerifyStep(Step):
    """Query Prometheus every `interval` until `condition` held for `for` (passed) or `timeout` ran out (failed).

    Label values are escaped for PromQL's double-quoted strings when `query` renders: write
    `service="{{ $labels.service }}"`. Every series of the answer must meet the condition."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )

    action: Literal["verify"]
    query: Template
    condition: ThresholdText = Field(description="a comparator and a threshold: '< 0.05', '>= 99%'")
    hold_for: Duration = Field(default=timedelta(0), alias="for")
    interval: Duration = timedelta(seconds=30)
    timeout: Duration
    # An empty answer (no series) or NaN is not evidence of health: it fails unless this says 'pass'.
    no_data: Literal["fail", "pass"] = "fail"

    @model_validator(mode="after")
    def _sane(self) -> VerifyStep:
        if self.interval < timedelta(seconds=1):
            raise ValueError("interval must be at least 1 second")
        if self.timeout < self.hold_for:
            raise ValueError("timeout must be at least `for`: the condition could never hold long enough")
        return self


class ApprovalStep(Step):
    """A person must approve through the runbook workflow's `approve_step` update.

    `timeout` and `default` (the outcome when nobody decides in time) are one value or a mapping by
    severity, with `otherwise` for the rest: `default: {sev1: approve, otherwise: reject}`. An unlisted
    severity without `otherwise` rejects: nothing runs unapproved unless the policy says so."""

    action: Literal["approval"]
    approvers: list[str] = Field(min_length=1)
    message: Template = ""
    timeout: Duration | dict[str, Duration]
    default: Outcome | dict[str, Outcome] = "reject"

    def timeout_for(self, severity: str) -> timedelta | None:
        if isinstance(self.timeout, timedelta):
            return self.timeout
        return self.timeout.get(severity, self.timeout.get(OTHERWISE))

    def default_for(self, severity: str) -> Outcome:
        if isinstance(self.default, str):
            return self.default
        return self.default.get(severity, self.default.get(OTHERWISE, "reject"))


class WaitStep(Step):
    action: Literal["wait"]
    duration: Duration


class NotifyStep(Step):
    """A message to channels as response actions address them (`#incidents`, `#sre-alerts`)."""

    action: Literal["notify"]
    channels: list[str] = Field(min_length=1)
    message: Template


Compensation = Annotated[
    ScaleStep | RolloutUndoStep | HttpStep | NotifyStep,
    Field(discriminator="action"),
    BeforeValidator(registered_action("compensation")),
]
RunbookStep = Annotated[
    ScaleStep | RolloutRestartStep | RolloutUndoStep | HttpStep | VerifyStep | ApprovalStep | WaitStep | NotifyStep,
    Field(discriminator="action"),
    BeforeValidator(registered_action("step")),
]
KubernetesStep = ScaleStep | RolloutRestartStep | RolloutUndoStep
CompensatingStep = ScaleStep | RolloutUndoStep | HttpStep | NotifyStep

for _model in (ScaleStep, RolloutRestartStep, RolloutUndoStep, HttpStep):
    _model.model_rebuild()


def compensation_of(step: Step) -> CompensatingStep | None:
    """The step's `compensate:`, if it has one (only steps that change something can)."""
    undo = getattr(step, "compensate", None)
    return undo if isinstance(undo, ScaleStep | RolloutUndoStep | HttpStep | NotifyStep) else None
