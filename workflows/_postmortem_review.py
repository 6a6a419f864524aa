"""The post-mortem's review: the updates `approve` and `request_changes`, the query `status`, the UI details.

Validators refuse before anything reaches history: a decision outside review, or by nobody. A repeated
request_id answers the first result again and changes nothing.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from tocsin.models import PostMortemInput
    from tocsin.postmortem.state import (
        ApproveRequest,
        PostMortemState,
        RequestChangesRequest,
        ReviewAnswer,
        ReviewNote,
    )
    from tocsin.roster.roles import refusal

_REMEMBERED = 100


class ReviewHandlers:
    _data: PostMortemInput
    _state: PostMortemState
    _decided: bool

    def _answer(self, request_id: str | None, message: str) -> ReviewAnswer:
        state = self._state
        if request_id is not None:
            state.handled[request_id] = message
            while len(state.handled) > _REMEMBERED:
                state.handled.pop(next(iter(state.handled)))
        self._show()
        return ReviewAnswer(key=state.key, phase=state.phase, revision=state.revision, message=message)

    def _repeat(self, request_id: str | None) -> ReviewAnswer | None:
        state = self._state
        if request_id is not None and request_id in state.handled:
            message = state.handled[request_id] + " (repeated request, not applied again)"
            return ReviewAnswer(key=state.key, phase=state.phase, revision=state.revision, message=message)
        return None

    def _in_review(self, request_id: str | None) -> None:
        state = self._state
        if request_id is not None and request_id in state.handled:
            return
        if state.phase != "in_review" or self._decided:
            raise ValueError(f"post-mortem {state.key} is not waiting for review (it is {state.phase})")

    @workflow.update(name="approve")
    def approve(self, request: ApproveRequest) -> ReviewAnswer:
        repeated = self._repeat(request.request_id)
        if repeated:
            return repeated
        self._state.approved_by = request.by
        self._state.approved_at = workflow.now()
        # The phase moves with the decision, so nobody reads "in review" while the next step runs.
        self._state.phase = "publishing"
        self._decided = True
        return self._answer(request.request_id, f"revision {self._state.revision} approved by {request.by}")

    @approve.validator
    def _validate_approve(self, request: ApproveRequest) -> None:
        self._in_review(request.request_id)
        self._reviewer(request.by, request.request_id, "approve this post-mortem")

    @workflow.update(name="request_changes")
    def request_changes(self, request: RequestChangesRequest) -> ReviewAnswer:
        repeated = self._repeat(request.request_id)
        if repeated:
            return repeated
        self._state.review_notes.append(ReviewNote(by=request.by, notes=request.notes, at=workflow.now()))
        self._state.phase = "analysing"
        self._decided = True
        message = f"changes requested by {request.by}: revision {self._state.revision + 1} will follow"
        return self._answer(request.request_id, message)

    @request_changes.validator
    def _validate_request_changes(self, request: RequestChangesRequest) -> None:
        self._in_review(request.request_id)
        self._reviewer(request.by, request.request_id, "request changes to this post-mortem")
        limit = self._data.policy.postmortem.review.max_change_requests
        if request.request_id not in self._state.handled and len(self._state.review_notes) >= limit:
            raise ValueError(
                f"post-mortem {self._state.key} has had {limit} rounds of changes (postmortem.review."
                "max_change_requests): approve this revision, or let the review deadline pass"
            )

    def _reviewer(self, who: str, request_id: str | None, what: str) -> None:
        """Only a roster person who is one of the policy's reviewers now: approval publishes with the
        worker's credentials, so a typed name must at least be someone the policy trusts with it."""
        if request_id is not None and request_id in self._state.handled:
            return
        policy = self._data.policy
        why = refusal(policy.roster, who, policy.postmortem.review.reviewers, workflow.now(), what)
        if why is not None:
            raise ValueError(why)

    @workflow.query(name="status")
    def status(self) -> PostMortemState:
        return self._state

    def _show(self) -> None:
        state = self._state
        lines = [f"**Post-mortem of {state.key}**: {state.phase.replace('_', ' ')}, revision {state.revision}"]
        if state.draft_markdown:
            lines.append(f"- draft: `{state.draft_markdown}` (analysis: {state.analyzer or 'pending'})")
        for source, status in state.sources.items():
            lines.append(f"- {source}: {status}")
        if state.approved_by:
            lines.append(f"- approved by {state.approved_by}")
        if state.report_url:
            lines.append(f"- published: {state.report_url}")
        if state.items:
            still = sum(1 for i in state.items if i.open)
            lines.append(f"- action items: {still} of {len(state.items)} open")
        workflow.set_current_details("\n".join(lines))
