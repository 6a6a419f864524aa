"""Triage as a pure function: from what was reported and the policy, the incident to open.

Runs where the alert arrives (CLI, receiver), before the workflow starts, so label templates are rendered
once, outside the workflow sandbox, and the workflow input records exactly what was decided.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from tocsin.incident.contracts import IncidentInput, PlannedAction
from tocsin.policy.schema import CreateIncident, Policy, ResponseWorkflow
from tocsin.policy.templating import render_template
from tocsin.runbook.plan_contracts import RunbookPlan
from tocsin.runbook.planner import PlanError, plan_from_policy

REMEDIATION_ACTIONS = (
    "execute_runbook",
    "scale_resources",
    "enable_read_replicas",
    "throttle_non_critical_queries",
)


# The service names the incident and is a search attribute; intake's schemas check received labels against
# this same bound (tocsin.intake.limits), so a payload is refused before triage would refuse it.
SERVICE_MAX = 200


class TriggerRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    service: str = Field(min_length=1, max_length=SERVICE_MAX)
    severity: str | None = None
    title: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    response_workflow: str | None = None
    key: str | None = None
    source: str = "cli"


class TriageError(ValueError):
    pass


def match_response_workflow(policy: Policy, labels: dict[str, str]) -> str | None:
    """The first response workflow whose `match` accepts every label it names, or that names the alert
    among its triggers."""
    for name, flow in policy.automated_response_workflows.items():
        if flow.match and all(labels.get(k) in values for k, values in flow.match.items()):
            return name
        if labels.get("alertname") in {t.name for t in flow.triggers if t.name}:
            return name
    return None


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "incident"


def new_key(service: str, now: datetime) -> str:
    """A fresh key for a manual trigger: readable, sortable, and unique without coordination."""
    return f"{_slug(service)}-{now:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def _render_actions(flow: ResponseWorkflow, labels: dict[str, str]) -> list[PlannedAction]:
    planned = []
    for action in flow.actions:
        if isinstance(action, CreateIncident):
            continue
        fields = action.model_dump(exclude={"type"})
        params: dict[str, str] = {}
        for name, value in fields.items():
            if isinstance(value, dict):
                params.update({f"{name}.{k}": render_template(v, labels) for k, v in value.items()})
            elif isinstance(value, list):
                params[name] = ", ".join(str(v) for v in value)
            elif name == "replicas":
                params[name] = str(value)  # an expression for the runbook engine, not a label template
            else:
                params[name] = render_template(str(value), labels)
        planned.append(PlannedAction(type=action.type, params=params))
    return planned


# Seed actions that run the policy's runbook of the same name, with the action's fields as parameters; without
# one the timeline says so (nothing runs that the worker's policy does not define).
RUNBOOK_ACTIONS = ("scale_resources", "enable_read_replicas", "throttle_non_critical_queries")


def _runbook_of(action: PlannedAction) -> tuple[str, dict[str, str]] | None:
    if action.type == "execute_runbook":
        prefix = "parameters."
        return action.params["runbook"], {
            k.removeprefix(prefix): v for k, v in action.params.items() if k.startswith(prefix)
        }
    if action.type in RUNBOOK_ACTIONS:
        return action.type, dict(action.params)
    return None


def _plan_runbooks(
    policy: Policy, actions: list[PlannedAction], service: str, severity: str, labels: dict[str, str]
) -> list[RunbookPlan]:
    """Render each runbook an action asks for, now. One that cannot be planned does not stop the incident from
    opening: the action carries the reason to the timeline instead. A plan made here is only a proposal: the
    run plans it again with the worker's own policy and is refused unless both are the same (its digest)."""
    plans: list[RunbookPlan] = []
    for action in actions:
        found = _runbook_of(action)
        if found is None:
            continue
        name, parameters = found
        try:
            plan = plan_from_policy(
                policy, name, service=service, severity=severity, labels=labels, parameters=parameters
            )
        except PlanError as err:
            action.params["plan_error"] = str(err)
            continue
        action.params["plan"] = str(len(plans))
        plans.append(plan)
    return plans


def plan_incident(policy: Policy, request: TriggerRequest, now: datetime) -> IncidentInput:
    labels = {"service": request.service, **request.labels}
    flow_name = request.response_workflow or match_response_workflow(policy, labels)
    flow = None
    if flow_name is not None:
        flow = policy.automated_response_workflows.get(flow_name)
        if flow is None:
            known = ", ".join(policy.automated_response_workflows) or "none"
            raise TriageError(f"unknown response workflow {flow_name!r} (known: {known})")
    create = flow.create_incident if flow else None
    severity = request.severity or (create.severity if create else policy.lifecycle.default_severity)
    if severity not in policy.incident_classification.severity_levels:
        known = ", ".join(policy.incident_classification.severity_levels)
        raise TriageError(f"unknown severity {severity!r} (known: {known})")
    title = request.title or (render_template(create.title, labels) if create else f"{request.service} incident")
    actions = _render_actions(flow, labels) if flow else []
    return IncidentInput(
        key=request.key or new_key(request.service, now),
        title=title,
        service=request.service,
        severity=severity,
        labels=labels,
        response_workflow=flow_name,
        actions=actions,
        source=request.source,
        # `now` is when the alert arrived or the CLI was asked: the incident's clock starts there.
        first_alert_at=now,
        policy=policy,
        runbooks=_plan_runbooks(policy, actions, request.service, severity, labels),
    )
