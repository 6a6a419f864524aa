"""From gathered evidence to a published report: gather (each source on its own) → timeline and impact (pure)
→ analysis (LLM, or the built-in analyzer) → action items (pure) → draft → review → publish (idempotent).

A reviewer's request for changes sends the draft back through analysis with their notes; a review nobody
decides by the follow-through horizon leaves the draft unpublished.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from tocsin.postmortem.action_items import action_items
    from tocsin.postmortem.contracts import (
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
    from tocsin.postmortem.impact import compute_impact
    from tocsin.postmortem.state import TrackedItem
    from tocsin.postmortem.timeline import merge_timeline
    from workflows.idempotency import idempotency_key
    from workflows.postmortem.context import PostMortemContext
    from workflows.postmortem.review import await_decision
    from workflows.postmortem.steps import gather, notify, options

# A publishing worker heartbeats every 5 s (activities/postmortem_report.py); three missed beats mean it died.
PUBLISH_HEARTBEAT = timedelta(seconds=15)


async def draft_review_publish(ctx: PostMortemContext) -> bool:
    """True once the report is published (or, refused by the publisher, approved and kept on disk); False
    when nobody reviewed it in time."""
    data, state = ctx.data, ctx.state
    sources = await gather(data)
    state.sources = {s.source: s.status + (f": {s.reason}" if s.reason else "") for s in sources}
    timeline = merge_timeline(sources)
    series = [x for s in sources for x in s.series]
    impact = compute_impact(data.incident, series, data.policy.postmortem)
    evidence = [e for s in sources for e in s.evidence]
    state.phase = "analysing"
    ctx.show()
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
        analysis = await _analyse(ctx, request.model_copy(update={"review_notes": ctx.review_notes()}))
        items = action_items(
            analysis,
            data.policy.postmortem,
            workflow.now().date(),
            service=data.incident.service,
            evidence=evidence,
        )
        draft = await _render(ctx, sources, timeline, impact, analysis, items)
        verdict = await await_decision(ctx, draft)
        if verdict == "approved":
            # The published report says who approved it: the approved revision, rendered once more.
            draft = await _render(ctx, sources, timeline, impact, analysis, items, final=True)
            break
        if verdict == "unreviewed":
            return False
    state.phase = "publishing"
    ctx.show()
    publication = await _publish(ctx, draft, items)
    if any(i.issue_number for i in publication.items):
        # Commit the report again with its action items' issues linked (the issues are found, not refiled).
        draft = await _render(ctx, sources, timeline, impact, analysis, items, final=True, published=publication)
        publication = await _publish(ctx, draft, items)
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
    await notify(data, "published", ctx.stakeholders(), f"Post-mortem of {data.incident.key} published: {where}")
    state.phase = "following_up"
    return True


async def _analyse(ctx: PostMortemContext, request: AnalysisRequest) -> Analysis:
    analysis: Analysis = await workflow.execute_activity(
        "postmortem_analyze", request, result_type=Analysis, **options("root-cause analysis", timedelta(minutes=5))
    )
    ctx.state.analyzer = analysis.analyzer
    return analysis


async def _render(
    ctx: PostMortemContext,
    sources: list[SourceResult],
    timeline: list[TimelineEvent],
    impact: Impact,
    analysis: Analysis,
    items: list[ActionItem],
    *,
    final: bool = False,
    published: Publication | None = None,
) -> Draft:
    state = ctx.state
    if not final:
        state.revision += 1
    request = ReportRequest(
        incident=ctx.data.incident,
        sources=sources,
        timeline=timeline,
        impact=impact,
        analysis=analysis,
        action_items=items,
        revision=state.revision,
        review_notes=ctx.review_notes(),
        approved_by=state.approved_by if final else None,
        published=published.items if published else [],
    )
    what = f"render the approved revision {state.revision}" if final else f"render revision {state.revision}"
    draft: Draft = await workflow.execute_activity("postmortem_render", request, result_type=Draft, **options(what))
    state.draft_markdown = draft.markdown.path
    return draft


async def _publish(ctx: PostMortemContext, draft: Draft, items: list[ActionItem]) -> Publication:
    data = ctx.data
    request = PublishRequest(
        key=data.incident.key,
        draft=draft,
        action_items=items,
        idempotency_key=idempotency_key(f"publish/{draft.revision}"),
        report_path=data.policy.postmortem.report_path,
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
            data,
            f"publish-failed/{draft.revision}",
            ctx.stakeholders(),
            f"Post-mortem of {data.incident.key} approved but not published ({reason}); "
            f"the report is at {ctx.state.draft_markdown}",
        )
        return Publication(
            items=[PublishedItem(title=i.title, owner=i.owner, due=i.due) for i in items],
            notes=[f"not published: {reason}"],
        )
    return publication
