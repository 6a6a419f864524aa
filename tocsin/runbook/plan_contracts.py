"""The runbook workflow's input: a runbook with every template rendered for one incident (RunbookPlan).

Plain pydantic data, safe to import in the workflow sandbox (through `imports_passed_through`) and to
carry in a history: no secret is in it (secrets are `SecretRef` names and `${NAME}` URL bases) and no
template is left to render. `describe()` is what `tocsin runbook dry-run` prints.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from tocsin.durations import Duration, format_duration
from tocsin.runbook.errors import GuardrailViolation
from tocsin.runbook.schema import Guardrails
from tocsin.runbook.steps import URL_BASE, Outcome, SecretRef

# A step without its own `timeout`: how long its activity (or wait) may take.
DEFAULT_TIMEOUTS: dict[str, timedelta] = {
    "kubernetes.scale": timedelta(minutes=2),
    "kubernetes.rollout_restart": timedelta(minutes=10),
    "kubernetes.rollout_undo": timedelta(minutes=10),
    "http": timedelta(seconds=30),
    "notify": timedelta(minutes=1),
}


class _Planned(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    # The whole step: an activity's schedule-to-close, an approval's wait, a verify's overall deadline.
    timeout: Duration
    compensate: PlannedCompensation | None = None


class _PlannedKubernetes(_Planned):
    namespace: str
    deployment: str
    wait_for_rollout: bool

    @property
    def target(self) -> str:
        return f"deployment {self.namespace}/{self.deployment}"


class PlannedScale(_PlannedKubernetes):
    action: Literal["kubernetes.scale"] = "kubernetes.scale"
    # A normalised expression ("current * 2", "4") or "previous" (a compensation: the count `restores` found).
    replicas: str
    # The ceiling: the lower of the step's and the runbook's. None only for "previous".
    max_replicas: int | None
    restores: str | None = None

    def summary(self) -> str:
        if self.replicas == "previous":
            return f"scale {self.target} back to the count {self.restores or 'the step'} found"
        return f"scale {self.target} to {self.replicas} (at most {self.max_replicas})"


class PlannedRestart(_PlannedKubernetes):
    action: Literal["kubernetes.rollout_restart"] = "kubernetes.rollout_restart"

    def summary(self) -> str:
        return f"restart {self.target}" + (", wait for the rollout" if self.wait_for_rollout else "")


class PlannedUndo(_PlannedKubernetes):
    action: Literal["kubernetes.rollout_undo"] = "kubernetes.rollout_undo"
    to_revision: int | None = None

    def summary(self) -> str:
        to = f"revision {self.to_revision}" if self.to_revision else "the previous revision"
        return f"roll {self.target} back to {to}" + (", wait for the rollout" if self.wait_for_rollout else "")


class PlannedHttp(_Planned):
    action: Literal["http"] = "http"
    method: str
    # Rendered; may start with `${NAME}`, the base URL read from the worker's environment when the step runs.
    url: str
    headers: dict[str, SecretRef | str] = Field(default_factory=dict)
    json_body: dict[str, JsonValue] | None = None
    text_body: str | None = None
    expect: list[int] = Field(default_factory=list)
    # The policy step's explicit permission to reach a loopback, or a link-local (cloud metadata) address.
    allow_loopback: bool = False
    allow_link_local: bool = False

    @property
    def base_setting(self) -> str | None:
        """The worker's environment variable the URL starts with (`${NAME}`), or None for a literal URL."""
        found = URL_BASE.match(self.url)
        return found.group(1) if found else None

    def summary(self) -> str:
        secrets = [f"{h} from ${s.secret}" for h, s in self.headers.items() if isinstance(s, SecretRef)]
        expect = "/".join(str(c) for c in self.expect) or "2xx"
        allowed = [k for k, on in (("loopback", self.allow_loopback), ("link-local", self.allow_link_local)) if on]
        extra = f" ({', '.join(secrets)})" if secrets else ""
        reach = f"; may reach {' and '.join(allowed)} addresses" if allowed else ""
        return f"{self.method} {self.url}{extra}, expect {expect}{reach}"


class PlannedVerify(_Planned):
    action: Literal["verify"] = "verify"
    query: str
    condition: str
    hold_for: Duration
    interval: Duration
    no_data: Literal["fail", "pass"] = "fail"

    def summary(self) -> str:
        held = f" for {format_duration(self.hold_for)}" if self.hold_for else ""
        return (
            f"verify `{self.query}` {self.condition}{held} "
            f"(every {format_duration(self.interval)}, fail after {format_duration(self.timeout)})"
        )


class PlannedApproval(_Planned):
    action: Literal["approval"] = "approval"
    approvers: list[str]
    message: str = ""
    # The outcome when nobody decides within `timeout`, for this incident's severity.
    default: Outcome

    def summary(self) -> str:
        ask = f": {self.message}" if self.message else ""
        return (
            f"approval by {', '.join(self.approvers)}{ask} "
            f"(no answer in {format_duration(self.timeout)}: {self.default})"
        )


class PlannedWait(_Planned):
    action: Literal["wait"] = "wait"
    duration: Duration

    def summary(self) -> str:
        return f"wait {format_duration(self.duration)}"


class PlannedNotify(_Planned):
    action: Literal["notify"] = "notify"
    channels: list[str]
    message: str

    def summary(self) -> str:
        return f"notify {', '.join(self.channels)}: {self.message}"


PlannedStep = Annotated[
    PlannedScale
    | PlannedRestart
    | PlannedUndo
    | PlannedHttp
    | PlannedVerify
    | PlannedApproval
    | PlannedWait
    | PlannedNotify,
    Field(discriminator="action"),
]
PlannedCompensation = Annotated[
    PlannedScale | PlannedUndo | PlannedHttp | PlannedNotify,
    Field(discriminator="action"),
]
for _model in (PlannedScale, PlannedRestart, PlannedUndo, PlannedHttp, PlannedVerify, PlannedApproval, PlannedWait):
    _model.model_rebuild()
PlannedNotify.model_rebuild()


class PlanRequest(BaseModel):
    """What a runbook run asks the worker to plan: a runbook of the worker's policy by name, for an incident.

    The only caller-chosen inputs are label values (checked when they render) and the service and severity."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    runbook: str = Field(min_length=1, max_length=200)
    service: str
    severity: str
    labels: dict[str, str] = Field(default_factory=dict)
    parameters: dict[str, str] = Field(default_factory=dict)


class RunbookPlan(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    runbook: str
    description: str = ""
    service: str
    severity: str
    # What the templates saw: the incident's labels, its service, the execute_runbook parameters.
    labels: dict[str, str]
    guardrails: Guardrails
    steps: list[PlannedStep]
    # Guardrails the plan already breaks (a namespace not on the allow-list): the runbook must not start.
    violations: list[str] = Field(default_factory=list)

    def request(self) -> PlanRequest:
        """The request that plans this again: `labels` is what the templates saw, so re-planning it with the
        same policy gives the same plan (a parameter that overrode `service` is passed as a parameter again)."""
        parameters = (
            {"service": self.labels["service"]} if self.labels.get("service", self.service) != self.service else {}
        )
        return PlanRequest(
            runbook=self.runbook,
            service=self.service,
            severity=self.severity,
            labels=self.labels,
            parameters=parameters,
        )

    def check(self) -> None:
        """Raise GuardrailViolation (all of them, in one message) before a real run starts."""
        if self.violations:
            raise GuardrailViolation(f"runbook {self.runbook} refused: " + "; ".join(self.violations))

    def describe(self) -> str:
        """The plan for a person: what would run, in order, what would undo it, and what is refused."""
        g = self.guardrails
        lines = [f"Runbook {self.runbook} for {self.service} ({self.severity})"]
        if self.description:
            lines.append(f"  {self.description}")
        rules = [
            "one runbook per service at a time; another request "
            + ("waits" if g.concurrency == "wait" else "is refused")
        ]
        if g.allowed_namespaces:
            rules.append(f"namespaces {', '.join(g.allowed_namespaces)}")
        if g.max_replicas is not None:
            rules.append(f"at most {g.max_replicas} replicas")
        if g.rate_limit:
            rules.append(f"at most {g.rate_limit.max_runs} runs per {format_duration(g.rate_limit.per)}")
        lines.append(f"Guardrails: {'; '.join(rules)}")
        if self.labels:
            lines.append("Labels: " + ", ".join(f"{k}={v}" for k, v in self.labels.items()))
        lines.append("Steps:")
        for i, step in enumerate(self.steps, start=1):
            lines.append(f"  {i}. {step.name}: {step.summary()}  [timeout {format_duration(step.timeout)}]")
            if step.compensate is not None:
                lines.append(f"     undo ({step.compensate.name}): {step.compensate.summary()}")
        undo = [s.compensate.name for s in reversed(self.steps) if s.compensate is not None]
        if undo:
            lines.append(f"If a step fails: {', '.join(undo)} (for the steps done, latest first), then escalate.")
        else:
            lines.append("If a step fails: nothing to undo; escalate.")
        lines.extend(f"REFUSED: {v}" for v in self.violations)
        return "\n".join(lines)


def plan_digest(plan: RunbookPlan) -> str:
    """sha256 of the plan's canonical JSON (sorted keys, no spaces): what a run carries and compares with the
    plan the worker's own policy makes, so a plan written anywhere else is told apart. Pure, so a workflow
    may compute it too."""
    canonical = json.dumps(plan.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
