"""PostMortemWorkflow (`postmortem-<key>`, task queue `postmortems`): from a resolved incident to a reviewed,
published, followed-through post-mortem.

gather (each source on its own) → timeline and impact (pure) → analysis (LLM, or the built-in analyzer) →
action items (pure) → draft → review (updates `approve` / `request_changes`, reminders until the deadline)
→ publish (idempotent) → follow-through (the action items' issues, on a timer, until closed or the
horizon). Runs recorded before "postmortem-pipeline" only recorded their input, and still do.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.postmortem import PostMortemActivities
    from tocsin.durations import format_duration
    from tocsin.models import PostMortemInput, PostMortemResult
    from tocsin.postmortem.action_items import action_items
    from tocsin.postmortem.impact import compute_impact
    from tocsin.postmortem.models import (
        ActionItem,
        Analysis,
        AnalysisRequest,
        Draft,
        Impact,
        Publication,
        PublishedItem,
        PublishRequest,
        ReportRequest,
        SourceResult,
        TimelineEvent,
    )
    from tocsin.postmortem.state import PostMortemState, TrackedItem
    from tocsin.postmortem.timeline import merge_timeline
    from workflows.idempotency import idempotency_key
    from workflows._postmortem_follow_up import follow_up
    from workflows._postmortem_review import ReviewHandlers
    from workflows._postmortem_steps import gather, notify, options

# A publishing worker heartbeats every 5 s (activities/postmortem_report.py); three missed beats mean it died.
PUBLISH_HEARTBEAT = timedelta(seconds=15)


@workflow.defn(name="PostMortemWorkflow")
class PostMortemWorkflow(ReviewHandlers):
    @workflow.init
    def __init__(self, data: PostMortemInput) -> None:
        self._data = data
        self._state = data.carried or PostMortemState(key=data.incident.key)
        self._decided = False

    @workflow.run
    async def run(self, data: PostMortemInput) -> PostMortemResult:
        if data.carried is None:
            recorded = await workflow.execute_activity_method(
                PostMortemActivities.record_input,
                data,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(maximum_attempts=10, maximum_interval=timedelta(minutes=1)),
                summary="record the incident hand-off",
            )
            self._state.input_ref = recorded.input_ref
        else:
            recorded = PostMortemResult(key=data.incident.key, input_ref=self._state.input_ref)
        if not workflow.patched("postmortem-pipeline"):
            return recorded
        state = self._state
        if state.phase not in ("following_up",):
            published = await self._draft_review_publish()
            if not published:
                self._show()
                return recorded
        await follow_up(self)
        state.phase = "done"
        self._show()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return recorded

    async def _draft_review_publish(self) -> bool:
        data, state = self._data, self._state
        sources = await gather(data)
        state.sources = {s.source: s.status + (f": {s.reason}" if s.reason else "") for s in sources}
        timeline = merge_timeline(sources)
        series = [x for s in sources for x in s.series]
        impact = compute_impact(data.incident, series, data.policy.postmortem)
        evidence = [e for s in sources for e in s.evidence]
        state.phase = "analysing"
        self._show()
        request = AnalysisRequest(
            key=data.incident.key,
            title=data.incident.title,
            service=data.incident.service,
            severity=data.incident.severity,
            timeline=timeline,
            evidence=evidence,
            series=series,
            impact=impact,
            settings=data.policy.postmortem,
        )
        while True:
            analysis = await self._analyse(request.model_copy(update={"review_notes": self._notes()}))
            items = action_items(analysis, data.policy.postmortem, workflow.now().date(), service=data.incident.service)
            draft = await self._render(sources, timeline, impact, analysis, items)
            verdict = await self._review(draft)
            if verdict == "approved":
                # The published report says who approved it: the approved revision, rendered once more.
                draft = await self._render(sources, timeline, impact, analysis, items, final=True)
                break
            if verdict == "unreviewed":
                return False
        state.phase = "publishing"
        self._show()
        publication = await self._publish(draft, items)
        if any(i.issue_number for i in publication.items):
            # Commit the report again with its action items' issues linked (the issues are found, not refiled).
            draft = await self._render(sources, timeline, impact, analysis, items, final=True, published=publication)
            publication = await self._publish(draft, items)
        state.report_url = publication.report_url
        state.items = [
            TrackedItem(
                title=i.title,
                owner=i.owner,
                # Due at this time of day on its due date: nudges fire on the day, at the hour it was published.
                due=datetime.combine(i.due, workflow.now().timetz()),
                issue_number=i.issue_number,
                issue_url=i.issue_url,
            )
            for i in publication.items
        ]
        where = publication.report_url or state.draft_markdown
        await notify(data, "published", self._stakeholders(), f"Post-mortem of {data.incident.key} published: {where}")
        state.phase = "following_up"
        return True

    async def _analyse(self, request: AnalysisRequest) -> Analysis:
        analysis: Analysis = await workflow.execute_activity(
            "postmortem_analyze", request, result_type=Analysis, **options("root-cause analysis", timedelta(minutes=5))
        )
        self._state.analyzer = analysis.analyzer
        return analysis

    async def _render(
        self,
        sources: list[SourceResult],
        timeline: list[TimelineEvent],
        impact: Impact,
        analysis: Analysis,
        items: list[ActionItem],
        *,
        final: bool = False,
        published: Publication | None = None,
    ) -> Draft:
        state = self._state
        if not final:
            state.revision += 1
        request = ReportRequest(
            incident=self._data.incident,
            sources=sources,
            timeline=timeline,
            impact=impact,
            analysis=analysis,
            action_items=items,
            revision=state.revision,
            review_notes=self._notes(),
            approved_by=state.approved_by if final else None,
            published=published.items if published else [],
        )
        what = f"render the approved revision {state.revision}" if final else f"render revision {state.revision}"
        draft: Draft = await workflow.execute_activity("postmortem_render", request, result_type=Draft, **options(what))
        state.draft_markdown = draft.markdown.path
        return draft

    async def _review(self, draft: Draft) -> Literal["approved", "changes", "unreviewed"]:
        """Wait for a decision, reminding until the deadline; after it, wait on (without reminders) until the
        follow-through horizon, then give up: the draft stays a draft, `unreviewed`."""
        data, state = self._data, self._state
        review = data.policy.postmortem.review
        state.phase = "in_review"
        self._decided = False
        self._show()
        await notify(
            data,
            f"draft/{state.revision}",
            [f"post:#inc-{data.incident.key}", *review.reviewers],
            f"Post-mortem draft r{state.revision} of {data.incident.key} is ready for review: {draft.markdown.path} "
            f"(`tocsin postmortem approve {data.incident.key} --by NAME` or `request-changes`)",
        )
        deadline = workflow.now() + review.deadline
        horizon = workflow.now() + data.policy.postmortem.follow_up.horizon
        while not self._decided:
            now = workflow.now()
            until = min(now + review.remind_every, deadline) if now < deadline else horizon
            if until <= now:
                state.phase = "unreviewed"
                return "unreviewed"
            try:
                await workflow.wait_condition(
                    lambda: self._decided, timeout=until - now, timeout_summary="a reviewer's decision"
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

    async def _publish(self, draft: Draft, items: list[ActionItem]) -> Publication:
        request = PublishRequest(
            key=self._data.incident.key,
            draft=draft,
            action_items=items,
            idempotency_key=idempotency_key(f"publish/{draft.revision}"),
            report_path=self._data.policy.postmortem.report_path,
        )
        try:
            publication: Publication = await workflow.execute_activity(
                "postmortem_publish",
                request,
                result_type=Publication,
                # A worker that dies mid-publication is noticed by its silence in seconds, not after 5 minutes.
                **options("publish", timedelta(minutes=5), heartbeat=PUBLISH_HEARTBEAT),
            )
        except ActivityError as err:
            # A refusal (revoked token, protected branch) must not lose the approval: the report stays on
            # disk, the items are followed by their dates, and the stakeholders hear why.
            reason = f"{err.cause or err}"
            await notify(
                self._data,
                f"publish-failed/{draft.revision}",
                self._stakeholders(),
                f"Post-mortem of {self._data.incident.key} approved but not published ({reason}); "
                f"the report is at {self._state.draft_markdown}",
            )
            return Publication(
                items=[PublishedItem(title=i.title, owner=i.owner, due=i.due) for i in items],
                notes=[f"not published: {reason}"],
            )
        return publication

    def _notes(self) -> list[str]:
        return [f"{n.by}: {n.notes}" for n in self._state.review_notes]

    def _stakeholders(self) -> list[str]:
        return list(self._data.policy.severity(self._data.incident.severity).stakeholders)
