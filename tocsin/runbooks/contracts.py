"""What RunbookWorkflow takes, answers and hands its activities: one pydantic model per input and output.

All of it lands in workflow histories: plans carry secret *names*, never values, and answers are excerpts.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tocsin.policy.models import Roster
from tocsin.runbooks.kubernetes import Scale
from tocsin.runbooks.planned import PlannedHttp, PlannedVerify, RunbookPlan
from tocsin.runbooks.steps import SecretRef

StepOutcome = Literal["done", "failed", "skipped", "approved", "rejected"]
RunOutcome = Literal["succeeded", "failed", "refused", "rejected"]


def runbook_workflow_id(incident_key: str, n: int) -> str:
    return f"runbook-{incident_key}-{n}"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RunbookInput(_Model):
    plan: RunbookPlan
    incident: str
    # The incident's workflow, told of each step (signal `runbook_progress`); None when run on its own.
    incident_workflow_id: str | None = None
    requested_by: str = "tocsin"
    # How long a run waits for its service when the runbook's concurrency is `wait`.
    max_wait: timedelta = timedelta(minutes=30)
    # Who an approver (a rotation, a team) is at the moment of deciding; the incident's policy snapshot's.
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


class ApproveStepRequest(_Model):
    """Update `approve_step`: a person decides an approval step (by name)."""

    step: str
    by: str = Field(min_length=1)
    approve: bool = True
    note: str = ""


class RunRunbookRequest(_Model):
    """Update `run_runbook` on an incident: a plan rendered by the caller (`tocsin runbook run`)."""

    plan: RunbookPlan
    by: str = Field(min_length=1)


class RunbookProgress(_Model):
    """Signal `runbook_progress` to the incident: one line for its timeline."""

    workflow_id: str
    text: str
    # Set on the last one: how the run ended, and whether its verification passed.
    outcome: RunOutcome | None = None
    verified: bool = False


# --- activity inputs and outputs ----------------------------------------------------------------------


class ScaleRead(_Model):
    namespace: str
    deployment: str
    allowed_namespaces: list[str]


class ScaleApply(_Model):
    target: int
    based_on: Scale
    allowed_namespaces: list[str]
    wait_for_rollout: bool
    # Seconds the rollout may take, inside the activity's own timeout.
    rollout_within: float


class RolloutCall(_Model):
    namespace: str
    deployment: str
    allowed_namespaces: list[str]
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
