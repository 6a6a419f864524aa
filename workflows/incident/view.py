"""How an incident shows itself to operators in the Web UI: its summary and current details. Pure."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from tocsin.durations import format_duration
    from tocsin.incident.contracts import IncidentState
    from tocsin.policy.schema import Policy


def static_summary(state: IncidentState) -> str:
    return f"[{state.severity}] {state.title} ({state.service})"


def step_name(policy: Policy, level: int) -> str:
    steps = policy.escalation_policies.primary_oncall
    return steps[level - 1].type if 0 < level <= len(steps) else "none"


def details_markdown(state: IncidentState, policy: Policy) -> str:
    """Current details for the Web UI: the state an operator needs at a glance, then the latest events."""
    level = policy.severity(state.severity)
    lines = [
        f"**{state.severity}** ({level.name}) · **{state.status}** · service `{state.service}`",
        "",
        f"- Opened: {state.opened_at:%Y-%m-%d %H:%M:%S}Z",
        f"- Targets: acknowledge within {format_duration(level.response_time)}, "
        f"mitigate within {format_duration(level.escalation_time)}",
        f"- Escalation level: {state.escalation_level} ({step_name(policy, state.escalation_level)})"
        + (" — chain exhausted" if state.escalation.exhausted else ""),
    ]
    if state.next_escalation_at:
        lines.append(f"- Next page: {state.next_escalation_at:%H:%M:%S}Z")
    if state.acknowledged_by:
        lines.append(f"- Acknowledged by {state.acknowledged_by} at {state.acknowledged_at:%H:%M:%S}Z")
    if state.resolved_by:
        lines.append(f"- Resolved by {state.resolved_by} at {state.resolved_at:%H:%M:%S}Z")
    if state.escalation.breaches:
        lines.append(f"- Targets missed: {', '.join(state.escalation.breaches)}")
    if state.paging_held:
        lines.append(f"- Paging held: the storm incident `{state.storm_key}` pages for this one")
    if state.maintenance.held:
        lines.append(f"- Paging held by {state.maintenance.held.describe()}")
    if state.storm:
        lines.append(f"- Storm: {state.storm.count} incidents joined")
    if state.alert_count:
        lines.append(
            f"- Alerts: {state.alert_count}"
            + (f" ({state.alerts_untracked} untracked)" if state.alerts_untracked else "")
        )
    if state.timeline_folded:
        lines.append(f"- Timeline: {state.timeline_folded} older entries folded (the history has them)")
    lines += ["", "| time | event | detail |", "|---|---|---|"]
    for entry in state.timeline[-8:]:
        text = entry.text.replace("|", "/")
        lines.append(f"| {entry.at:%H:%M:%S} | {entry.kind} | {text} |")
    return "\n".join(lines)
