"""Closing an incident: tell the stakeholders, then hand off to the post-mortem, which outlives its parent."""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import Priority
from temporalio.exceptions import WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from tocsin.durations import format_elapsed
    from tocsin.incident.contracts import POSTMORTEM_TASK_QUEUE, PostMortemInput, postmortem_workflow_id
    from tocsin.policy.priority import POSTMORTEM
    from workflows.incident.core import IncidentCore
    from workflows.incident.deliveries import Deliveries


async def close_incident(core: IncidentCore, deliveries: Deliveries) -> None:
    state, policy = core.state, core.policy
    state.next_escalation_at = None
    # PagerDuty stops paging, the war room and the status page say resolved, before anyone is told.
    await deliveries.sync_followers()
    lasted = format_elapsed(workflow.now() - state.opened_at)
    summary = f" — {state.resolution_summary}" if state.resolution_summary else ""
    await deliveries.tell_stakeholders("resolved", f"resolved after {lasted}{summary}")
    if state.severity not in policy.lifecycle.postmortem_severities:
        core.record("postmortem", f"no post-mortem: {state.severity} is not in the policy's postmortem_severities")
        return
    child_id = postmortem_workflow_id(state.key)
    info = workflow.info()
    state.postmortem_workflow_id = child_id
    handoff = PostMortemInput(
        incident=state.model_copy(deep=True),
        policy=policy,
        parent_workflow_id=info.workflow_id,
        parent_run_id=info.run_id,
    )
    try:
        await workflow.start_child_workflow(
            "PostMortemWorkflow",
            handoff,
            id=child_id,
            task_queue=POSTMORTEM_TASK_QUEUE,
            # Days of review ahead: last in any queue. Its activities and notifications inherit it.
            priority=Priority(priority_key=POSTMORTEM),
            # The review and follow-up take days; the incident closes now.
            parent_close_policy=workflow.ParentClosePolicy.ABANDON,
            static_summary=f"Post-mortem of [{state.severity}] {state.title}",
        )
        core.record("postmortem", f"post-mortem started: {child_id}")
    except WorkflowAlreadyStartedError:
        core.record("postmortem", f"post-mortem {child_id} already exists; not started again")
