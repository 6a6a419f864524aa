"""Detection without Alertmanager: the triggers' PromQL, evaluated by Tocsin, as pure functions and models.

A run of DetectionWorkflow is (previous state, one evaluation, workflow time) -> (transitions, next state),
with Prometheus' own `for:` semantics: a series returned by a trigger's expr is pending from the run that
first saw it, fires once it has been seen for the trigger's duration, and resolves when it is no longer
returned. The state travels from run to run as the workflow's result (the schedule hands it to the next
run as its last completion result), so a condition that must hold for ten minutes survives worker
restarts and deploys.

An alert's labels are exactly those Prometheus would give the alert of the rule `tocsin rules export`
writes (series labels without `__name__`, the rule's labels, `alertname`), and its fingerprint is
Alertmanager's, so an incident that hears of a problem from both paths keys and records it once.
"""

from __future__ import annotations

from datetime import datetime

from tocsin.detection.contracts import (
    MAX_ERROR,
    MAX_VALUE,
    DetectionResult,
    DetectionState,
    Evaluation,
    FiringSeries,
    RunPlan,
    Transition,
    TriggerEvaluation,
    TriggerQuery,
    TriggerSpec,
    TriggerState,
)
from tocsin.detection.prometheus_rules import prometheus_rules
from tocsin.intake.contracts import NormalizedAlert
from tocsin.policy.schema import Policy

_FNV_OFFSET = 14695981039346656037


_FNV_PRIME = 1099511628211


_MASK = (1 << 64) - 1


_SEPARATOR = 0xFF


def alertmanager_fingerprint(labels: dict[str, str]) -> str:
    """Prometheus' `LabelSet.Fingerprint()` as Alertmanager prints it: FNV-1a 64 over the sorted names and
    values, each followed by 0xff, in 16 hex digits. An empty value is no label, as in Prometheus."""
    h = _FNV_OFFSET
    for name in sorted(n for n, v in labels.items() if v):
        for part in (name, labels[name]):
            for byte in part.encode("utf-8"):
                h = ((h ^ byte) * _FNV_PRIME) & _MASK
            h = ((h ^ _SEPARATOR) * _FNV_PRIME) & _MASK
    return f"{h:016x}"


def detection_triggers(policy: Policy) -> list[TriggerSpec]:
    """Every trigger with a name and an expr, with the labels and summary of its exported Prometheus rule."""
    rules = {
        (group["name"], rule["alert"]): rule for group in prometheus_rules(policy)["groups"] for rule in group["rules"]
    }
    specs: list[TriggerSpec] = []
    seen: set[str] = set()
    for flow_name, flow in policy.automated_response_workflows.items():
        for trigger in flow.triggers:
            rule = rules.get((f"tocsin-{flow_name}", trigger.name))
            if not (trigger.name and trigger.expr and rule):
                continue
            ident = f"{flow_name}/{trigger.name}"
            n = 2
            while ident in seen:  # the same alert name twice in one workflow: two triggers, two states
                ident = f"{flow_name}/{trigger.name}#{n}"
                n += 1
            seen.add(ident)
            labels = {**rule["labels"], "alertname": trigger.name}
            specs.append(
                TriggerSpec(
                    query=TriggerQuery(id=ident, expr=" ".join(trigger.expr.split()), labels=labels),
                    duration=trigger.duration,
                    summary=str(rule["annotations"]["summary"]),
                )
            )
    return specs


def _resolution(trigger: str, fingerprint: str, series: FiringSeries, summary: str) -> Transition:
    """A firing series that is no more: its alert resolves, labelled and dated as it fired."""
    return Transition(
        trigger=trigger,
        fingerprint=fingerprint,
        status="resolved",
        labels=series.labels,
        since=series.since,
        summary=summary,
    )


def _short(text: str) -> str:
    return text if len(text) <= MAX_ERROR else text[: MAX_ERROR - 1] + "…"


def plan_run(
    state: DetectionState,
    specs: list[TriggerSpec],
    evaluation: Evaluation | None,
    now: datetime,
    max_series: int,
) -> RunPlan:
    """What this run changes. A trigger Prometheus could not evaluate keeps its state as it was."""
    plan = RunPlan(state=DetectionState())
    by_id = {spec.query.id: spec for spec in specs}
    for spec in specs:
        ident = spec.query.id
        previous = state.triggers.get(ident, TriggerState())
        result = evaluation.triggers.get(ident) if evaluation else None
        if result is None or result.error is not None:
            if result is not None and result.error:
                plan.errors[ident] = _short(result.error)
            plan.state.triggers[ident] = previous.model_copy(deep=True)
            continue
        plan.evaluated += 1
        plan.state.triggers[ident] = _observe(spec, previous, result, now, max_series, plan.transitions)
    # A trigger gone from the policy: its alerts are over (pending ones simply end).
    for ident, previous in state.triggers.items():
        if ident in by_id:
            continue
        for fp, series in sorted(previous.firing.items()):
            name = series.labels.get("alertname", ident)
            plan.transitions.append(_resolution(ident, fp, series, f"{name}: trigger removed from the policy"))
        if previous.firing:
            plan.state.triggers[ident] = TriggerState(firing=dict(previous.firing))
    return plan


def _observe(
    spec: TriggerSpec,
    previous: TriggerState,
    result: TriggerEvaluation,
    now: datetime,
    max_series: int,
    out: list[Transition],
) -> TriggerState:
    ident = spec.query.id
    pending: dict[str, datetime] = {}
    firing = dict(previous.firing)
    room = max_series - len(firing)
    for fp in sorted(result.series):
        if fp in firing:
            continue
        if len(pending) >= max_series:
            break
        since = previous.pending.get(fp, now)
        pending[fp] = since
        if now - since >= spec.duration and room > 0:
            room -= 1
            sample = result.series[fp]
            out.append(
                Transition(
                    trigger=ident,
                    fingerprint=fp,
                    status="firing",
                    labels={**sample.labels, **spec.query.labels},
                    since=since,
                    summary=spec.summary,
                    value=sample.value,
                )
            )
    if not result.truncated:
        # Absent from a complete answer: the condition no longer holds. (From a truncated one, we cannot tell.)
        for fp, series in sorted(firing.items()):
            if fp not in result.series:
                out.append(_resolution(ident, fp, series, spec.summary))
    return TriggerState(pending=pending, firing=firing)


def settle(plan: RunPlan, delivered: list[Transition]) -> DetectionState:
    """Apply the transitions intake accepted; the others stay as they were and are retried next run."""
    state = plan.state.model_copy(deep=True)
    for t in delivered:
        trigger = state.triggers.setdefault(t.trigger, TriggerState())
        if t.status == "firing":
            trigger.pending.pop(t.fingerprint, None)
            trigger.firing[t.fingerprint] = FiringSeries(labels=t.labels, since=t.since)
        else:
            trigger.firing.pop(t.fingerprint, None)
    state.triggers = {k: v for k, v in state.triggers.items() if v.pending or v.firing}
    return state


def to_alert(t: Transition, now: datetime) -> NormalizedAlert:
    return NormalizedAlert(
        source="detector",
        status=t.status,
        labels=t.labels,
        annotations={"summary": t.summary, **({"value": t.value[:MAX_VALUE]} if t.value else {})},
        summary=t.summary,
        fingerprint=t.fingerprint,
        starts_at=t.since,
        ends_at=now if t.status == "resolved" else None,
    )


def details_markdown(result: DetectionResult) -> str:
    lines = [
        f"Run {result.run}: {result.evaluated}/{result.triggers} triggers evaluated; "
        f"**{result.pending}** pending, **{result.firing}** firing; "
        f"{result.fired} handed to intake as firing, {result.resolved} as resolved.",
    ]
    for where, error in sorted(result.errors.items())[:10]:
        lines.append(f"- `{where}`: {error}")
    return "\n".join(lines)
