"""What RunbookWorkflow takes, answers and hands its activities: one pydantic model per input and output.

All of it lands in workflow histories: plans carry secret *names*, never values, and answers are excerpts.
Fields marked "before runbooks-by-name" are what older runs sent; they stay readable so those histories replay,
and the code that runs today neither trusts nor executes them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from tocsin.incident.updates import _Request
from tocsin.policy.roster_schema import Roster
from tocsin.runbook.kubernetes import Scale
from tocsin.runbook.plan_contracts import PlannedHttp, PlannedVerify, PlanRequest, RunbookPlan
from tocsin.runbook.steps import SecretRef

StepOutcome = Literal["done", "failed", "skipped", "approved", "rejected"]
RunOutcome = Literal["succeeded", "failed", "refused", "rejected"]


def runbook_workflow_id(incident_key: str, n: int) -> str:
    return f"runbook-{incident_key}-{n}"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RunbookInput(_Model):
    # A plan rendered elsewhere (at triage, or by a test): the run refuses it unless it is exactly what the
    # worker's policy makes of plan.request(). Required before runbooks-by-name.
    plan: RunbookPlan | None = None
    # A runbook asked for by name (update run_runbook): the worker plans it. Either this or `plan`.
    request: PlanRequest | None = None
    incident: str
    # The incident's workflow, told of each step (signal `runbook_progress`); None when run on its own.
    incident_workflow_id: str | None = None
    requested_by: str = "tocsin"
    # How long a run waits for its service when the runbook's concurrency is `wait`.
    max_wait: timedelta = timedelta(minutes=30)
    # Who an approver is, before runbooks-by-name; since then the worker's policy's roster decides.
    roster: Roster = Field(default_factory=Roster)


class StepRecord(_Model):
    step: str
    action: str
    outcome: StepOutcome
    detail: str
    at: datetime
    compensation: bool = False


class RunbookResult(_Model):
    runbook: str
    outcome: RunOutcome
    reason: str
    # True when the runbook had a verify step and every one passed: the incident counts as mitigated.
    verified: bool = False
    steps: list[StepRecord] = Field(default_factory=list)
    # sha256 of the plan that ran (tocsin.runbook.plan_contracts.plan_digest); None when no plan was made.
    digest: str | None = None


class ApproveStepRequest(_Model):
    """Update `approve_step`: a person decides an approval step (by name)."""

    step: str
    by: str = Field(min_length=1)
    approve: bool = True
    note: str = ""


LabelValues = Annotated[
    dict[Annotated[str, Field(min_length=1, max_length=200)], Annotated[str, Field(max_length=2000)]],
    Field(max_length=64),
]


class RunRunbookRequest(_Request):
    """Update `run_runbook` on an incident: a runbook of the worker's policy, by name (`tocsin runbook run`).

    `labels` are laid over the incident's own, `parameters` over both, as an execute_runbook action's are; the
    worker plans the runbook from its own policy. A retried request (same `request_id`) queues one run."""

    runbook: str | None = Field(default=None, min_length=1, max_length=200)
    labels: LabelValues = Field(default_factory=dict)
    parameters: LabelValues = Field(default_factory=dict)
    # Before runbooks-by-name the caller sent the whole plan. Readable so those histories replay; the
    # update's validator refuses a request that carries one.
    plan: RunbookPlan | None = None


class RunbookProgress(_Model):
    """Signal `runbook_progress` to the incident: one line for its timeline."""

    workflow_id: str
    text: str
    # Set on the last one: how the run ended, and whether its verification passed.
    outcome: RunOutcome | None = None
    verified: bool = False


# --- activity inputs and outputs ----------------------------------------------------------------------


class _PolicyCall(_Model):
    """A call the activity checks against the worker's policy: the runbook (and step) it belongs to. The
    allow-list the call itself carries (before runbooks-by-name) is never read."""

    runbook: str | None = None
    allowed_namespaces: list[str] = Field(default_factory=list)


class ScaleRead(_PolicyCall):
    namespace: str
    deployment: str


class ScaleApply(_PolicyCall):
    # The policy's step of this name gives the ceiling.
    step: str | None = None
    target: int
    based_on: Scale
    wait_for_rollout: bool
    # Seconds the rollout may take, inside the activity's own timeout.
    rollout_within: float


class RolloutCall(_PolicyCall):
    namespace: str
    deployment: str
    action: Literal["restart", "undo", "status"]
    at: datetime
    to_revision: int | None = None
    if_revision: int | None = None
    wait_for_rollout: bool = True
    rollout_within: float = 600.0


class RolloutResult(_Model):
    changed: bool
    revision: int | None = None
    done: bool = True
    detail: str


class HttpCall(_Model):
    step: PlannedHttp
    idempotency_key: str
    # The policy's step of this runbook with step.name gives the secrets, URL base and address permissions.
    runbook: str | None = None


class PlanCall(_Model):
    """Activity `runbook_plan`: plan `request` with the worker's policy; a `digest` that differs is refused."""

    request: PlanRequest
    digest: str | None = None


class PlanAnswer(_Model):
    plan: RunbookPlan | None = None
    digest: str | None = None
    # Who holds which approver role, from the worker's policy: the run's approvals are checked against it.
    roster: Roster = Field(default_factory=Roster)
    # Why the run may not go ahead, for the timeline; None when `plan` may run.
    refused: str | None = None


class VerifyQuery(_Model):
    query: str
    query_timeout: float = 10.0


class Preflight(_Model):
    """What a plan needs from the worker that runs it: a cluster, Prometheus, settings (URL bases, secrets)."""

    kubernetes: bool = False
    prometheus: bool = False
    settings: list[str] = Field(default_factory=list)


class PreflightAnswer(_Model):
    # Each thing the worker lacks, in words for the timeline; empty when the plan can run.
    missing: list[str] = Field(default_factory=list)


def preflight_of(plan: RunbookPlan) -> Preflight:
    """Pure: from the plan's steps and compensations. A runbook that cannot run here is refused before it
    touches anything, instead of failing halfway (as a channel without credentials goes to the outbox)."""
    needs = Preflight()
    settings: dict[str, None] = {}
    for step in plan.steps:
        for planned in (step, step.compensate):
            if planned is not None and planned.action.startswith("kubernetes."):
                needs.kubernetes = True
            elif isinstance(planned, PlannedVerify):
                needs.prometheus = True
            elif isinstance(planned, PlannedHttp):
                if planned.base_setting:
                    settings[planned.base_setting] = None
                settings.update({v.secret: None for v in planned.headers.values() if isinstance(v, SecretRef)})
    needs.settings = list(settings)
    return needs
