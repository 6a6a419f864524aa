"""PostMortemWorkflow (`postmortem-<key>`, task queue `postmortems`): from a resolved incident to a reviewed,
published, followed-through post-mortem.

The incident hand-off is recorded first; then the pipeline drafts, has reviewed (updates `approve` /
`request_changes`) and publishes the report (workflows/postmortem/pipeline.py), and the follow-through checks
its action items until they are closed or the horizon has passed (workflows/postmortem/follow_up.py). A run
continued as new mid follow-through carries its state and picks up there.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.postmortem import PostMortemActivities
    from tocsin.incident.contracts import PostMortemInput, PostMortemResult
    from tocsin.postmortem.state import ApproveRequest, PostMortemState, RequestChangesRequest, ReviewAnswer
    from workflows.postmortem import review
    from workflows.postmortem.context import PostMortemContext
    from workflows.postmortem.follow_up import follow_up
    from workflows.postmortem.pipeline import draft_review_publish


@workflow.defn(name="PostMortemWorkflow")
class PostMortemWorkflow:
    @workflow.init
    def __init__(self, data: PostMortemInput) -> None:
        self._ctx = PostMortemContext(data=data, state=data.carried or PostMortemState(key=data.incident.key))

    @workflow.run
    async def run(self, data: PostMortemInput) -> PostMortemResult:
        ctx = self._ctx
        if data.carried is None:
            recorded = await workflow.execute_activity_method(
                PostMortemActivities.record_input,
                data,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(maximum_attempts=10, maximum_interval=timedelta(minutes=1)),
                summary="record the incident hand-off",
            )
            ctx.state.input_ref = recorded.input_ref
        else:
            recorded = PostMortemResult(key=data.incident.key, input_ref=ctx.state.input_ref)
        if ctx.state.phase != "following_up" and not await draft_review_publish(ctx):
            ctx.show()
            return recorded
        await follow_up(ctx)
        ctx.state.phase = "done"
        ctx.show()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return recorded

    @workflow.update(name="approve")
    def approve(self, request: ApproveRequest) -> ReviewAnswer:
        return review.approve(self._ctx, request)

    @approve.validator
    def _validate_approve(self, request: ApproveRequest) -> None:
        review.check_approve(self._ctx, request)

    @workflow.update(name="request_changes")
    def request_changes(self, request: RequestChangesRequest) -> ReviewAnswer:
        return review.request_changes(self._ctx, request)

    @request_changes.validator
    def _validate_request_changes(self, request: RequestChangesRequest) -> None:
        review.check_request_changes(self._ctx, request)

    @workflow.query(name="status")
    def status(self) -> PostMortemState:
        return self._ctx.state
