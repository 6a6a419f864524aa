"""PostMortemWorkflow: the child every resolved incident the policy selects hands off to.

This issue fixes the hand-off and its contract (the incident's full state and timeline); the evidence,
analysis and report pipeline is built on it in the post-mortem issue.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.postmortem import PostMortemActivities
    from tocsin.models import PostMortemInput, PostMortemResult


@workflow.defn(name="PostMortemWorkflow")
class PostMortemWorkflow:
    @workflow.run
    async def run(self, data: PostMortemInput) -> PostMortemResult:
        workflow.set_current_details(
            f"Post-mortem input recorded for **{data.incident.key}** ({len(data.incident.timeline)} timeline entries)."
        )
        return await workflow.execute_activity_method(
            PostMortemActivities.record_input,
            data,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(maximum_attempts=10, maximum_interval=timedelta(minutes=1)),
            summary="record the incident hand-off",
        )
