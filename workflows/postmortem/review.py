"""The post-mortem's review: what the updates `approve` and `request_changes` check and do, and the wait for
a decision (reminders until the review deadline, then quiet until the follow-through horizon).

Validators refuse before anything reaches history: a decision outside review, or by nobody. A repeated
request_id answers the first result again and changes nothing.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from tocsin.durations import format_duration
    from tocsin.postmortem.contracts import Draft
    from tocsin.postmortem.state import ApproveRequest, RequestChangesRequest, ReviewAnswer, ReviewNote
    from tocsin.roster.roles import refusal
    from workflows.postmortem.context import PostMortemContext
    from workflows.postmortem.steps import notify

# How many request_ids a run remembers for answering repeats: the state (and so history) stays bounded.
REMEMBERED = 100

Verdict = Literal["approved", "changes", "unreviewed"]


def approve(ctx: PostMortemContext, request: ApproveRequest) -> ReviewAnswer:
    repeated = _repeat(ctx, request.request_id)
    if repeated:
        return repeated
    state = ctx.state
    state.approved_by = request.by
    state.approved_at = workflow.now()
    # The phase moves with the decision, so nobody reads "in review" while the next step runs.
    state.phase = "publishing"
    ctx.decided = True
    return _answer(ctx, request.request_id, f"revision {state.revision} approved by {request.by}")


def check_approve(ctx: PostMortemContext, request: ApproveRequest) -> None:
    _in_review(ctx, request.request_id)
    _reviewer(ctx, request.by, request.request_id, "approve this post-mortem")


def request_changes(ctx: PostMortemContext, request: RequestChangesRequest) -> ReviewAnswer:
    repeated = _repeat(ctx, request.request_id)
    if repeated:
        return repeated
    state = ctx.state
    state.review_notes.append(ReviewNote(by=request.by, notes=request.notes, at=workflow.now()))
    state.phase = "analysing"
    ctx.decided = True
    message = f"changes requested by {request.by}: revision {state.revision + 1} will follow"
    return _answer(ctx, request.request_id, message)


def check_request_changes(ctx: PostMortemContext, request: RequestChangesRequest) -> None:
    _in_review(ctx, request.request_id)
    _reviewer(ctx, request.by, request.request_id, "request changes to this post-mortem")
    state = ctx.state
    limit = ctx.data.policy.postmortem.review.max_change_requests
    if request.request_id not in state.handled and len(state.review_notes) >= limit:
        raise ValueError(
            f"post-mortem {state.key} has had {limit} rounds of changes (postmortem.review."
            "max_change_requests): approve this revision, or let the review deadline pass"
        )


async def await_decision(ctx: PostMortemContext, draft: Draft) -> Verdict:
    """Wait for a decision, reminding until the deadline; after it, wait on (without reminders) until the
    follow-through horizon, then give up: the draft stays a draft, `unreviewed`."""
    data, state = ctx.data, ctx.state
    review = data.policy.postmortem.review
    state.phase = "in_review"
    ctx.decided = False
    ctx.show()
    await notify(
        data,
        f"draft/{state.revision}",
        [f"post:#inc-{data.incident.key}", *review.reviewers],
        f"Post-mortem draft r{state.revision} of {data.incident.key} is ready for review: {draft.markdown.path} "
        f"(`tocsin postmortem approve {data.incident.key} --by NAME` or `request-changes`)",
    )
    deadline = workflow.now() + review.deadline
    horizon = workflow.now() + data.policy.postmortem.follow_up.horizon
    while not ctx.decided:
        now = workflow.now()
        until = min(now + review.remind_every, deadline) if now < deadline else horizon
        if until <= now:
            state.phase = "unreviewed"
            return "unreviewed"
        try:
            await workflow.wait_condition(
                lambda: ctx.decided, timeout=until - now, timeout_summary="a reviewer's decision"
            )
        except TimeoutError:
            if workflow.now() >= horizon:
                state.phase = "unreviewed"
                return "unreviewed"
            state.reminders += 1
            late = workflow.now() >= deadline
            # Whole minutes: a timer fires a few milliseconds late, and "4 days" reads better than 345599993ms.
            left = timedelta(minutes=round((deadline - workflow.now()).total_seconds() / 60))
            text = (
                f"Post-mortem of {data.incident.key} is past its review deadline"
                if late
                else f"Reminder: post-mortem of {data.incident.key} waits for review ({format_duration(left)} left)"
            )
            await notify(data, f"remind/{state.reminders}", review.reviewers, text)
    return "approved" if state.approved_by is not None else "changes"


def _answer(ctx: PostMortemContext, request_id: str | None, message: str) -> ReviewAnswer:
    state = ctx.state
    if request_id is not None:
        state.handled[request_id] = message
        while len(state.handled) > REMEMBERED:
            state.handled.pop(next(iter(state.handled)))
    ctx.show()
    return ReviewAnswer(key=state.key, phase=state.phase, revision=state.revision, message=message)


def _repeat(ctx: PostMortemContext, request_id: str | None) -> ReviewAnswer | None:
    state = ctx.state
    if request_id is not None and request_id in state.handled:
        message = state.handled[request_id] + " (repeated request, not applied again)"
        return ReviewAnswer(key=state.key, phase=state.phase, revision=state.revision, message=message)
    return None


def _in_review(ctx: PostMortemContext, request_id: str | None) -> None:
    state = ctx.state
    if request_id is not None and request_id in state.handled:
        return
    if state.phase != "in_review" or ctx.decided:
        raise ValueError(f"post-mortem {state.key} is not waiting for review (it is {state.phase})")


def _reviewer(ctx: PostMortemContext, who: str, request_id: str | None, what: str) -> None:
    """Only a roster person who is one of the policy's reviewers now: approval publishes with the
    worker's credentials, so a typed name must at least be someone the policy trusts with it."""
    if request_id is not None and request_id in ctx.state.handled:
        return
    policy = ctx.data.policy
    why = refusal(policy.roster, who, policy.postmortem.review.reviewers, workflow.now(), what)
    if why is not None:
        raise ValueError(why)
