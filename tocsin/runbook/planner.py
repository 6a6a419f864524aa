"""A runbook resolved for one incident: every template rendered, every guardrail that can be checked checked.

`plan_runbook` runs where a runbook is requested (the CLI, the activity or handler that starts the runbook
workflow), never inside a workflow: Jinja has no place in the workflow sandbox. It is pure and deterministic
(no I/O, no clock), so the same request always plans the same way, and the resulting `RunbookPlan` is the
runbook workflow's input: plain data that the workflow only reads.

Label values come from alerts, so they are escaped for where they land: percent-encoded in URLs, escaped for
PromQL's double-quoted strings in queries, and required to be valid Kubernetes names for deployments and
namespaces. Secrets stay names (`SecretRef`, `${NAME}` URL bases): they are read when a step runs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

from pydantic import JsonValue

from tocsin.policy.templating import TemplateError, render_template
from tocsin.runbook.guardrails import kubernetes_name_problem, namespace_problem, url_label_problem, url_path_problem
from tocsin.runbook.plan_contracts import (
    DEFAULT_TIMEOUTS,
    PlannedApproval,
    PlannedHttp,
    PlannedNotify,
    PlannedRestart,
    PlannedScale,
    PlannedStep,
    PlannedUndo,
    PlannedVerify,
    PlannedWait,
    PlanRequest,
    RunbookPlan,
)
from tocsin.runbook.schema import Runbook
from tocsin.runbook.steps import (
    ApprovalStep,
    CompensatingStep,
    HttpStep,
    RolloutRestartStep,
    RolloutUndoStep,
    RunbookStep,
    ScaleStep,
    SecretRef,
    VerifyStep,
    WaitStep,
    compensation_of,
)

if TYPE_CHECKING:
    from tocsin.policy.schema import Policy
# A label a template reads: `$labels.name` or `$labels['name']` (also without the `$`).
_LABEL_REF = re.compile(r"\$?\blabels\s*(?:\.\s*([A-Za-z_][A-Za-z0-9_]*)|\[\s*['\"]([^'\"]*)['\"]\s*\])")


class PlanError(ValueError):
    """The runbook cannot be planned for this incident: unknown, or a template fails or renders something
    unusable, or a label value is refused. The message is for a person and names the step or the label."""


def plan_request(policy: Policy, request: PlanRequest) -> RunbookPlan:
    """The plan the worker runs: `request` planned with `policy` (the worker's own)."""
    return plan_from_policy(
        policy,
        request.runbook,
        service=request.service,
        severity=request.severity,
        labels=request.labels,
        parameters=request.parameters,
    )


def plan_from_policy(
    policy: Policy,
    runbook: str,
    *,
    service: str,
    severity: str,
    labels: Mapping[str, str] | None = None,
    parameters: Mapping[str, str] | None = None,
) -> RunbookPlan:
    """`policy.runbooks[runbook]` planned; PlanError naming the defined runbooks when there is no such one."""
    found = policy.runbooks.get(runbook)
    if found is None:
        known = ", ".join(policy.runbooks) or "the policy defines none"
        raise PlanError(f"unknown runbook {runbook!r} ({known})")
    return plan_runbook(
        runbook, found, service=service, severity=severity, labels=labels or {}, parameters=parameters or {}
    )


def plan_runbook(
    name: str,
    runbook: Runbook,
    *,
    service: str,
    severity: str,
    labels: Mapping[str, str],
    parameters: Mapping[str, str] | None = None,
) -> RunbookPlan:
    """Render `runbook` for an incident. Templates see `$labels`: the incident's labels, `service` set to the
    incident's service, overlaid by the `execute_runbook` action's rendered `parameters`.

    Guardrail violations that a plan can see (a namespace outside the allow-list) are listed in
    `violations`, so a dry run shows them; RunbookPlan.check() raises for them before a real run."""
    context = {**labels, "service": service, **(parameters or {})}
    for label, pattern in runbook.labels.items():
        # A declared label that is missing counts as empty: the pattern says whether that is acceptable.
        value = context.get(label, "")
        if not re.fullmatch(pattern, value):
            raise PlanError(f"label {label}={_shown(value)} does not match the runbook's pattern {pattern!r}")
    renderer = _Renderer(runbook, context)
    steps = [renderer.step(step, severity) for step in runbook.steps]
    violations = []
    for step in steps:
        for planned in (step, step.compensate):
            if isinstance(planned, PlannedScale | PlannedRestart | PlannedUndo):
                problem = namespace_problem(planned.namespace, runbook.guardrails.allowed_namespaces)
                if problem:
                    violations.append(f"{planned.name}: {problem}")
    return RunbookPlan(
        runbook=name,
        description=runbook.description,
        service=service,
        severity=severity,
        labels=dict(sorted(context.items())),
        guardrails=runbook.guardrails,
        steps=steps,
        violations=violations,
    )


def _shown(value: str) -> str:
    return repr(value if len(value) <= 80 else value[:77] + "...")


def _promql_string(value: str) -> str:
    """A label value safe inside a PromQL double-quoted string: `a"b` cannot close the string early."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class _Renderer:
    def __init__(self, runbook: Runbook, labels: dict[str, str]) -> None:
        self.runbook = runbook
        self.labels = labels
        self.url_labels = {k: quote(v, safe="") for k, v in labels.items()}
        self.promql_labels = {k: _promql_string(v) for k, v in labels.items()}
        self.where = ""

    def render(self, template: str, labels: Mapping[str, str] | None = None) -> str:
        try:
            return render_template(template, self.labels if labels is None else labels)
        except TemplateError as err:
            raise PlanError(f"{self.where}: {err}") from None

    def name(self, kind: str, template: str) -> str:
        value = self.render(template)
        problem = kubernetes_name_problem(kind, value)
        if problem:
            raise PlanError(f"{self.where}: {problem} (from {template!r})")
        return value

    def step(self, step: RunbookStep, severity: str) -> PlannedStep:
        planned = self._one(step, severity)
        undo = compensation_of(step)
        if undo is None:
            return planned
        compensation = self._one(undo, severity, compensates=step)
        assert isinstance(compensation, PlannedScale | PlannedUndo | PlannedHttp | PlannedNotify)
        return planned.model_copy(update={"compensate": compensation})

    def _one(
        self, step: RunbookStep | CompensatingStep, severity: str, compensates: RunbookStep | None = None
    ) -> PlannedStep:
        self.where = f"step {step.name}"
        name, description = step.name, step.description
        if isinstance(step, ScaleStep | RolloutRestartStep | RolloutUndoStep):
            # What every Kubernetes step plans the same way: its target, rendered and checked, and its wait.
            target = {
                "name": name,
                "description": description,
                "timeout": step.timeout or DEFAULT_TIMEOUTS[step.action],
                "namespace": self.name("namespace", step.namespace),
                "deployment": self.name("deployment", step.deployment),
                "wait_for_rollout": step.wait_for_rollout,
            }
            if isinstance(step, RolloutRestartStep):
                return PlannedRestart.model_validate(target)
            if isinstance(step, RolloutUndoStep):
                return PlannedUndo.model_validate({**target, "to_revision": step.to_revision})
            previous = step.replicas == "previous"
            return PlannedScale.model_validate(
                {
                    **target,
                    "replicas": str(step.replicas),
                    "max_replicas": None if previous else self.runbook.ceiling(step),
                    "restores": compensates.name if previous and compensates is not None else None,
                }
            )
        if isinstance(step, HttpStep):
            return self._http(step)
        if isinstance(step, VerifyStep):
            return PlannedVerify(
                name=name,
                description=description,
                timeout=step.timeout,
                query=self.render(step.query, self.promql_labels),
                condition=step.condition,
                hold_for=step.hold_for,
                interval=step.interval,
                no_data=step.no_data,
            )
        if isinstance(step, ApprovalStep):
            timeout = step.timeout_for(severity)
            if timeout is None:
                raise PlanError(f"{self.where}: no approval timeout for {severity} (add it or 'otherwise')")
            return PlannedApproval(
                name=name,
                description=description,
                timeout=timeout,
                approvers=step.approvers,
                message=self.render(step.message),
                default=step.default_for(severity),
            )
        if isinstance(step, WaitStep):
            return PlannedWait(name=name, description=description, timeout=step.duration, duration=step.duration)
        return PlannedNotify(
            name=name,
            description=description,
            timeout=DEFAULT_TIMEOUTS[step.action],
            channels=step.channels,
            message=self.render(step.message),
        )

    def _http(self, step: HttpStep) -> PlannedHttp:
        for ref in _LABEL_REF.finditer(step.url):
            label = ref.group(1) or ref.group(2) or ""
            problem = url_label_problem(self.labels.get(label, ""))
            if problem:
                shown = _shown(self.labels.get(label, ""))
                raise PlanError(f"{self.where}: label {label}={shown} {problem}: refused in a URL")
        url = self.render(step.url, self.url_labels)
        path = urlsplit(url.split("}", 1)[1] if url.startswith("${") else url).path
        problem = url_path_problem(path)
        if problem:
            raise PlanError(f"{self.where}: the URL {url!r} {problem}")
        headers: dict[str, SecretRef | str] = {}
        for header, value in step.headers.items():
            if isinstance(value, SecretRef):
                headers[header] = value
                continue
            rendered = self.render(value)
            if "\r" in rendered or "\n" in rendered:
                raise PlanError(f"{self.where}: header {header!r} renders to more than one line")
            headers[header] = rendered
        json_body: dict[str, JsonValue] | None = None
        text_body: str | None = None
        if isinstance(step.body, dict):
            rendered_body = self._json(step.body)
            assert isinstance(rendered_body, dict)
            json_body = rendered_body
        elif isinstance(step.body, str):
            text_body = self.render(step.body)
        return PlannedHttp(
            name=step.name,
            description=step.description,
            timeout=step.timeout or DEFAULT_TIMEOUTS[step.action],
            method=step.method,
            url=url,
            headers=headers,
            json_body=json_body,
            text_body=text_body,
            expect=step.expect,
            allow_loopback=step.allow_loopback,
            allow_link_local=step.allow_link_local,
        )

    def _json(self, value: JsonValue) -> JsonValue:
        if isinstance(value, str):
            return self.render(value)
        if isinstance(value, dict):
            return {k: self._json(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._json(v) for v in value]
        return value
