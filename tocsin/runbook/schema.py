"""The `runbooks:` section of a policy: a runbook is its guardrails and its ordered steps.

A runbook is data, never a script: each step names one registered action (tocsin.runbook.registry), and an
action that is not registered is a policy error at load time. What a step does is in tocsin.runbook.steps;
what it renders to for one incident is in tocsin.runbook.planner.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from tocsin.durations import Duration
from tocsin.policy.fields import Strict
from tocsin.runbook.registry import OTHERWISE, dotted_loc, located_error
from tocsin.runbook.steps import (
    ApprovalStep,
    KubernetesStep,
    RolloutRestartStep,
    RolloutUndoStep,
    RunbookStep,
    ScaleStep,
    Step,
    compensation_of,
)


class RateLimit(Strict):
    max_runs: int = Field(ge=1, le=1000)
    per: Duration


class Guardrails(Strict):
    """What a runbook may do, checked before and while it runs."""

    # A second request for a service that already runs a runbook: refused, or it waits its turn.
    concurrency: Literal["refuse", "wait"] = "refuse"
    # Namespaces its Kubernetes steps may touch; required when it has any.
    allowed_namespaces: list[Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")]] = Field(
        default_factory=list
    )
    # No scale step goes above this (a step's own max_replicas may be lower).
    max_replicas: int | None = Field(default=None, ge=0, le=10_000)
    # At most max_runs runs of this runbook per window, across services.
    rate_limit: RateLimit | None = None


def _pattern(value: str) -> str:
    try:
        re.compile(value)
    except re.error as err:
        raise ValueError(f"not a regular expression: {err}") from None
    return value


LabelPattern = Annotated[str, Field(min_length=1, max_length=500), AfterValidator(_pattern)]


class Runbook(Strict):
    description: str = ""
    guardrails: Guardrails = Field(default_factory=Guardrails)
    # Label name -> a regular expression its whole value must match when the runbook is planned (a value
    # from an alert that does not match refuses the run): `labels: {database: "[a-z0-9_]+"}`.
    labels: dict[str, LabelPattern] = Field(default_factory=dict)
    steps: list[RunbookStep] = Field(min_length=1, max_length=50)

    @model_validator(mode="after")
    def _consistent(self) -> Runbook:
        seen: dict[str, str] = {}
        for i, step in enumerate(self.steps):
            for where, named in ((f"steps.{i}", step), (f"steps.{i}.compensate", compensation_of(step))):
                if named is None:
                    continue
                if named.name in seen:
                    raise located_error(
                        (*dotted_loc(where), "name"), named.name, f"duplicate step name (first at {seen[named.name]})"
                    )
                seen[named.name] = where
        for where, step, compensates in self.kubernetes_steps():
            if step.action == "kubernetes.scale" and step.replicas == "previous":
                if compensates is None:
                    raise located_error(
                        (*dotted_loc(where), "replicas"), "previous", "'previous' is for a compensation only"
                    )
                if not isinstance(compensates, ScaleStep):
                    raise located_error(
                        (*dotted_loc(where), "replicas"),
                        "previous",
                        "'previous' compensates a kubernetes.scale step only",
                    )
            elif step.action == "kubernetes.scale" and self.ceiling(step) is None:
                raise located_error(
                    (*dotted_loc(where), "max_replicas"),
                    None,
                    "a scale step needs a ceiling: set max_replicas here or in the runbook's guardrails",
                )
        allowed = self.guardrails.allowed_namespaces
        if self.kubernetes_steps() and not allowed:
            raise located_error(
                ("guardrails", "allowed_namespaces"),
                [],
                "a runbook with Kubernetes steps must list the namespaces it may touch",
            )
        for where, step, _ in self.kubernetes_steps():
            # A template is checked when it renders; a fixed namespace can be checked now.
            if "{" not in step.namespace and step.namespace not in allowed:
                raise located_error(
                    (*dotted_loc(where), "namespace"),
                    step.namespace,
                    f"namespace {step.namespace!r} is not in guardrails.allowed_namespaces ({', '.join(allowed)})",
                )
        return self

    def kubernetes_steps(self) -> list[tuple[str, KubernetesStep, Step | None]]:
        """(path, step, the step it compensates or None) for every Kubernetes step and compensation."""
        found: list[tuple[str, KubernetesStep, Step | None]] = []
        for i, step in enumerate(self.steps):
            if isinstance(step, ScaleStep | RolloutRestartStep | RolloutUndoStep):
                found.append((f"steps.{i}", step, None))
            undo = compensation_of(step)
            if isinstance(undo, ScaleStep | RolloutUndoStep):
                found.append((f"steps.{i}.compensate", undo, step))
        return found

    def ceiling(self, step: ScaleStep) -> int | None:
        limits = [m for m in (step.max_replicas, self.guardrails.max_replicas) if m is not None]
        return min(limits) if limits else None

    def problems(
        self, severities: Collection[str], is_target: Callable[[str], bool] | None = None
    ) -> list[tuple[str, str]]:
        """(path within the runbook, problem) for names that only the whole policy can check: the severities
        of approvals' mappings and, when the policy has a roster (`is_target`), the approvers."""
        found: list[tuple[str, str]] = []
        for i, step in enumerate(self.steps):
            if not isinstance(step, ApprovalStep):
                continue
            for field in ("timeout", "default"):
                mapping = getattr(step, field)
                if not isinstance(mapping, dict):
                    continue
                for key in mapping:
                    if key != OTHERWISE and key not in severities:
                        known = ", ".join(severities)
                        found.append((f"steps.{i}.{field}.{key}", f"unknown severity {key!r} (defined: {known})"))
                missing = [s for s in severities if s not in mapping]
                if field == "timeout" and missing and OTHERWISE not in mapping:
                    found.append(
                        (f"steps.{i}.timeout", f"no timeout for {', '.join(missing)}: name them or add 'otherwise'")
                    )
            if is_target is not None:
                for j, who in enumerate(step.approvers):
                    if not is_target(who):
                        found.append(
                            (f"steps.{i}.approvers.{j}", f"{who!r} is no person, team or rotation of the roster")
                        )
        return found
