"""Follow-through: after publication, check the action items' issues on a timer, nudge the owners of overdue
ones, and end when all are closed or the policy's horizon has passed. Continue-as-new keeps history small
over the weeks this takes.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from tocsin.postmortem.contracts import FollowUpReport, FollowUpRequest, PublishedItem
    from workflows.postmortem.context import PostMortemContext
    from workflows.postmortem.steps import notify, options


async def follow_up(ctx: PostMortemContext) -> None:
    data, state = ctx.data, ctx.state
    settings = data.policy.postmortem.follow_up
    approved = state.approved_at or workflow.now()
    horizon = approved + settings.horizon
    ctx.show()
    while any(item.open for item in state.items):
        if workflow.now() >= horizon:
            await notify(
                data,
                "horizon",
                ctx.stakeholders(),
                f"Post-mortem of {state.key}: follow-through ends with "
                f"{sum(i.open for i in state.items)} action items still open",
            )
            return
        await workflow.sleep(min(settings.check_every, horizon - workflow.now()), summary="next action-item check")
        state.checks += 1
        request = FollowUpRequest(
            key=state.key,
            items=[
                PublishedItem(
                    title=i.title, owner=i.owner, due=i.due.date(), issue_number=i.issue_number, issue_url=i.issue_url
                )
                for i in state.items
                if i.open
            ],
            today=workflow.now().date(),
        )
        try:
            report: FollowUpReport = await workflow.execute_activity(
                "postmortem_follow_up", request, result_type=FollowUpReport, **options("check the action items")
            )
        except ActivityError as err:
            # A revoked token or a GitHub outage: said once per check, and tried again at the next one.
            await notify(
                data,
                f"check-failed/{state.checks}",
                ctx.stakeholders()[:1],
                f"Post-mortem of {state.key}: could not check its action items: {err.cause or err}",
            )
            continue
        by_number = {s.issue_number: s for s in report.items}
        for item in state.items:
            seen = by_number.get(item.issue_number) if item.issue_number is not None else None
            if seen is not None and not seen.open:
                item.open = False
            elif item.open and item.due <= workflow.now():
                item.nudged += 1
                where = f" ({item.issue_url})" if item.issue_url else ""
                await notify(
                    data,
                    f"nudge/{state.checks}/{item.title[:40]}",
                    [item.owner],
                    f"Overdue action item from the post-mortem of {state.key}: {item.title}{where}",
                )
        ctx.show()
        if workflow.info().is_continue_as_new_suggested():
            await workflow.wait_condition(workflow.all_handlers_finished)
            workflow.continue_as_new(data.model_copy(update={"carried": state}))
