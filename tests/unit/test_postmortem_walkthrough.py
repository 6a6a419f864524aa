"""Issue #15's walk-through, end to end through the pure post-mortem steps: a sev1 for `ledger` from the CLI,
a note ("error rate 40% on ledger-writer since deploy 2041"), acknowledged, mitigated ("rolled back deploy
2041"), resolved ("root cause: connection pool exhausted after deploy 2041 halved the pool size"); no LLM, no
Prometheus, no GitHub. The record is what the incident workflow writes (workflows/incident/*): 39 entries, 30
of them deliveries and syncs, and the note in the same instant as the opening, recorded before it.

Then the same incident with GitHub configured: the deploy the responders named is found (corroborated), is
missing (not corroborated), or went live after the first symptom (contradicted).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from tocsin.incident.contracts import IncidentState, TimelineEntry
from tocsin.policy.postmortem import PostmortemPolicy
from tocsin.postmortem.action_items import action_items
from tocsin.postmortem.builtin_analyzer import builtin_analysis
from tocsin.postmortem.contracts import (
    Analysis,
    AnalysisRequest,
    Claim,
    Evidence,
    IncidentEvidenceRequest,
    ReportRequest,
    SeriesSummary,
    SourceResult,
    Statement,
)
from tocsin.postmortem.impact import compute_impact
from tocsin.postmortem.report.render import ReportRenderer
from tocsin.postmortem.sources.incident import incident_evidence
from tocsin.postmortem.sources.results import skipped
from tocsin.postmortem.stated_cause import Stated, matching_changes, references, stated_cause
from tocsin.postmortem.timeline import merge_timeline, story

KEY = "ledger-sev1-7f3a"
ALERT = datetime(2026, 12, 3, 8, 31, 30, tzinfo=UTC)
OPENED = datetime(2026, 12, 3, 8, 32, 12, tzinfo=UTC)
TODAY = date(2026, 12, 3)
POLICY = PostmortemPolicy()
CAUSE = "connection pool exhausted after deploy 2041 halved the pool size"


def t(seconds: float) -> datetime:
    return OPENED + timedelta(seconds=seconds)


def burst(start: float, channels: list[str], kind: str = "delivered") -> list[TimelineEntry]:
    if kind == "sync":
        return [
            TimelineEntry(at=t(start + n), kind="sync", text=f"{c} {c}-1: revision {start:g} → {start + 1:g}")
            for n, c in enumerate(channels)
        ]
    return [
        TimelineEntry(at=t(start + n), kind="delivered", text=f"{c} → PDAVE0{n}: outbox:incident-{KEY}/page/0/{n}")
        for n, c in enumerate(channels)
    ]


def walkthrough() -> IncidentState:
    pages = ["pagerduty"] * 4 + ["statuspage"]
    timeline = [
        # The note landed in the workflow's first task, before the run method recorded the opening.
        TimelineEntry(at=t(0), kind="note", text="error rate 40% on ledger-writer since deploy 2041", by="alice"),
        TimelineEntry(at=t(0), kind="opened", text="ledger sev1 (from cli, 42s after the first alert)"),
        TimelineEntry(at=t(0), kind="triaged", text="severity sev1: incident_response"),
        TimelineEntry(at=t(0), kind="action", text="notify_stakeholders: statuspage"),
        TimelineEntry(at=t(0), kind="page", text="level 1: paging primary_oncall via pagerduty (urgent)"),
        *burst(1, pages),
        *burst(7, ["statuspage", "slack"], "sync"),
        TimelineEntry(at=t(20), kind="acknowledged", text="acknowledged by alice; paging stopped", by="alice"),
        *burst(21, pages),
        *burst(27, ["statuspage", "slack"], "sync"),
        TimelineEntry(at=t(600), kind="mitigated", text="mitigated by alice: rolled back deploy 2041", by="alice"),
        *burst(601, pages),
        *burst(607, ["statuspage", "slack"], "sync"),
        TimelineEntry(at=t(1500), kind="resolved", text=f"resolved by alice: root cause: {CAUSE}", by="alice"),
        *burst(1501, pages),
        *burst(1507, ["statuspage", "slack"], "sync"),
        *burst(1510, ["statuspage", "slack"], "sync"),
        TimelineEntry(at=t(1515), kind="postmortem", text=f"post-mortem started: postmortem-{KEY}"),
    ]
    return IncidentState(
        key=KEY,
        title="ledger sev1",
        service="ledger",
        severity="sev1",
        status="resolved",
        opened_at=OPENED,
        first_alert_at=ALERT,
        first_paged_at=t(1),
        acknowledged_by="alice",
        acknowledged_at=t(20),
        mitigated_at=t(600),
        resolved_by="alice",
        resolved_at=t(1500),
        resolution_summary=f"root cause: {CAUSE}",
        timeline=timeline,
    )


def draft(
    incident: IncidentState, changes: SourceResult | None = None, series: list[SeriesSummary] | None = None
) -> tuple[list[SourceResult], AnalysisRequest, Analysis]:
    own = incident_evidence(IncidentEvidenceRequest(incident=incident, parent_workflow_id="w", parent_run_id="r"))
    metrics = (
        SourceResult(source="metrics", status="ok", series=series, evidence=_onset_evidence(series))
        if series
        else skipped("metrics", "TOCSIN_PROMETHEUS_URL is not set")
    )
    sources = [
        own,
        metrics,
        skipped("logs", "TOCSIN_LOKI_URL is not set"),
        changes or skipped("changes", "TOCSIN_GITHUB_REPO is not set: no changes gathered"),
        skipped("pagerduty", "TOCSIN_PAGERDUTY_API_TOKEN is not set"),
    ]
    all_series = [x for s in sources for x in s.series]
    request = AnalysisRequest(
        key=incident.key,
        title=incident.title,
        service=incident.service,
        severity=incident.severity,
        timeline=merge_timeline(sources),
        evidence=[e for s in sources for e in s.evidence],
        series=all_series,
        impact=compute_impact(incident, all_series, POLICY),
        settings=POLICY,
    )
    return sources, request, builtin_analysis(request)


def _onset_evidence(series: list[SeriesSummary]) -> list[Evidence]:
    return [
        Evidence(id=f"metrics-{n}", source="metrics", at=s.onset, summary=f"{s.name} rose above its objective")
        for n, s in enumerate(series, start=1)
        if s.onset
    ]


def said(request: AnalysisRequest, kind: str) -> Evidence:
    [found] = [e for e in request.evidence if e.said == kind]
    return found


def test_the_responders_cause_is_the_root_cause_cited_to_the_resolution(tmp_path: Path) -> None:
    incident = walkthrough()
    sources, request, analysis = draft(incident)
    resolution = said(request, "resolution")
    assert resolution.summary == f"alice, at resolution: root cause: {CAUSE}"
    assert said(request, "note").summary == "alice, in a note: error rate 40% on ledger-writer since deploy 2041"
    assert said(request, "mitigation").summary == "alice, at mitigation: rolled back deploy 2041"

    cause = analysis.primary_cause
    assert cause is not None
    assert cause.text == (
        f"Stated by alice, at resolution: {CAUSE}. A responder's statement, not yet corroborated by metrics or "
        "changes (none were gathered)."
    )
    assert cause.evidence == [resolution.id] and cause.stated == CAUSE
    assert analysis.confidence == 0.35  # a person's account, unchecked: neither a guess nor proven

    items = action_items(analysis, POLICY, TODAY, service="ledger")
    titles = [i.title for i in items]
    assert titles[:2] == ["Add deployment validation of the pool size", "Roll out with canary deployments"]
    assert all(i.evidence == [resolution.id] for i in items[:2])
    assert "pool size" in items[0].description

    # The story: key moments in order, the note after the opening, each burst of chatter one line.
    lines = story(request.timeline)
    texts = [line.text for line in lines]
    assert len(incident.timeline) == 39 and len(lines) == 14
    assert texts[0] == "first alert: ledger sev1 (42s before the incident opened)"
    assert (
        texts[1].startswith("opened: ledger sev1")
        and texts[2] == f"alice, in a note: {said(request, 'note').summary.split(': ', 1)[1]}"
    )
    assert texts[5] == "page: level 1: paging primary_oncall via pagerduty (urgent)"
    assert texts[6] == "5 notifications delivered: PagerDuty \u00d74, Statuspage; 2 syncs: Statuspage, Slack"
    assert lines[6].evidence == tuple(f"incident-{n}" for n in range(7, 14))  # every entry it stands for
    assert texts.index("acknowledged: acknowledged by alice; paging stopped (by alice)") == 7
    assert (
        texts[-2]
        == "5 notifications delivered: PagerDuty \u00d74, Statuspage; 4 syncs: Statuspage \u00d72, Slack \u00d72"
    )
    moments = ["first alert", "opened", "alice, in a note", "acknowledged", "alice, at mitigation", "alice, at res"]
    positions = [next(i for i, x in enumerate(texts) if x.startswith(m)) for m in moments]
    assert positions == sorted(positions)
    assert sum("notifications delivered" in x for x in texts) == 4

    report = ReportRequest(
        incident=incident,
        sources=sources,
        timeline=request.timeline,
        impact=request.impact,
        analysis=analysis,
        action_items=items,
    )
    rendered = ReportRenderer(tmp_path).render(report)
    markdown = rendered.markdown
    # HTML: the story in the page, every event one click away.
    assert '<details id="full-timeline">\n<summary>Full timeline (40 events, deliveries and syncs included)' in (
        rendered.html
    )
    assert (
        '<li>The first page reached someone 43s after the first alert, more than 30s. <span class="cite">[incident-6]'
        "</span>" in rendered.html
    )
    root = markdown[markdown.index("## Root cause") : markdown.index("## Contributing factors")]
    assert f"Stated by alice, at resolution: {CAUSE}." in root and f"[{resolution.id}]" in root
    assert "| Add deployment validation of the pool size |" in markdown
    assert "| Roll out with canary deployments |" in markdown
    story_rows = markdown[markdown.index("## Timeline") : markdown.index("## Root cause")].count("\n| 2026")
    full_rows = markdown[markdown.index("## Full timeline") :].count("\n| 2026")
    assert (story_rows, full_rows) == (14, 40)  # the full timeline: every entry, and the first alert
    poorly = markdown[markdown.index("## What went poorly") : markdown.index("## Action items")]
    # The 42 s the worker took to open it is a wait the responder felt: said, and cited to the page and delivery.
    assert "- The first page reached someone 43s after the first alert, more than 30s. [incident-6] [incident-7]" in (
        poorly
    )
    lessons = markdown[markdown.index("## Lessons learned") : markdown.index("## Evidence sources")]
    assert "- The cause rests on the responders' word: no change or metric was gathered" in lessons
    setting = "- A change to the pool size reached production and nothing before it caught the problem"
    assert f"{setting} [{resolution.id}]" in lessons
    mitigation = said(request, "mitigation").id
    assert f"- Rolling back ended the impact (alice, at mitigation) [{mitigation}]" in lessons


def deployment(number: int, at: datetime) -> Evidence:
    return Evidence(
        id="changes-1",
        source="changes",
        at=at,
        summary=f"Deployment {number} of main@abc1234 to production by carol: success at {at:%H:%M}Z",
        link="abc1234def5678",
    )


ERRORS = [SeriesSummary(name="error_rate", onset=t(-120), peak_at=t(300), peak=0.4, recovery=t(620))]


def test_the_named_deploy_found_in_the_changes_corroborates_it() -> None:
    changes = SourceResult(source="changes", status="ok", evidence=[deployment(2041, t(-900))])
    _, request, analysis = draft(walkthrough(), changes, ERRORS)
    cause = analysis.primary_cause
    assert cause is not None
    assert "Corroborated by the changes: deploy 2041 is Deployment 2041 of main@abc1234" in cause.text
    assert "The metrics agree: error_rate crossed its objective at 08:30." in cause.text
    assert cause.evidence[:2] == [said(request, "resolution").id, "changes-1"] and "metrics-1" in cause.evidence
    assert analysis.confidence == 0.8
    # The correlation found the same change: it is not repeated as pointing elsewhere.
    assert not [c for c in analysis.contributing_factors if "points elsewhere" in c.text]
    titles = [i.title for i in action_items(analysis, POLICY, TODAY)]
    assert titles[:2] == ["Add deployment validation of the pool size", "Roll out with canary deployments"]


def test_a_deploy_the_changes_lack_or_that_came_late_is_said() -> None:
    other = SourceResult(source="changes", status="ok", evidence=[deployment(2040, t(-900))])
    _, _, analysis = draft(walkthrough(), other, ERRORS)
    assert analysis.primary_cause is not None
    assert "Not corroborated: the 1 changes gathered do not include deploy 2041" in analysis.primary_cause.text
    assert analysis.confidence == 0.25
    assert "The gathered data points elsewhere: Deployment shortly before the onset" in (
        analysis.contributing_factors[0].text
    )

    late = SourceResult(source="changes", status="ok", evidence=[deployment(2041, t(60))])
    _, _, analysis = draft(walkthrough(), late, ERRORS)
    assert analysis.primary_cause is not None
    assert "Contradicted by the changes: Deployment 2041" in analysis.primary_cause.text
    assert "landed after the first symptom (error_rate rose at 08:30)" in analysis.primary_cause.text
    assert analysis.confidence < 0.35
    # A contradicted change is not a deployment cause on its own: the words still speak of a deploy, though.
    assert [i.title for i in action_items(analysis, POLICY, TODAY)][:1] == [
        "Add deployment validation of the pool size"
    ]


def test_missed_targets_failed_pages_and_levels_reached_are_in_the_report(tmp_path: Path) -> None:
    incident = walkthrough()
    incident.escalation.breaches.append("response")
    incident.escalation.step = 1
    incident.timeline[5:5] = [
        TimelineEntry(at=t(1.5), kind="breach", text="not acknowledged within 5m (response target missed)"),
        TimelineEntry(at=t(2), kind="delivery_failed", text="sms → +15550100: twilio answered 400"),
        TimelineEntry(at=t(3), kind="page", text="level 2: paging secondary_oncall via sms (urgent)"),
    ]
    sources, request, analysis = draft(incident)
    missed = [c for c in analysis.contributing_factors if c.text.startswith("Target missed")]
    assert [c.text for c in missed] == ["Target missed: not acknowledged within 5m (response target missed)"]
    items = action_items(analysis, POLICY, TODAY)
    [target] = [i for i in items if i.title == "Shorten the time to acknowledge"]
    assert target.priority == "P1" and target.evidence == missed[0].evidence

    report = ReportRequest(
        incident=incident,
        sources=sources,
        timeline=request.timeline,
        impact=request.impact,
        analysis=analysis,
        action_items=items,
    )
    markdown = ReportRenderer(tmp_path).render(report).markdown
    well = markdown[markdown.index("## What went well") : markdown.index("## What went poorly")]
    poorly = markdown[markdown.index("## What went poorly") : markdown.index("## Action items")]
    page2 = next(e.id for e in request.evidence if e.summary.startswith("page: level 2"))
    assert f"- Paging reached level 2 of the on-call chain before anyone acknowledged. [{page2}]" in poorly
    assert "- Notification not delivered: sms → +15550100: twilio answered 400 (08:32 UTC)." in poorly
    assert "- Not acknowledged within 5m (response target missed) (08:32 UTC)." in poorly
    assert "Acknowledged by alice" not in well


def statement(n: int, said: Statement, words: str, who: str = "alice") -> Evidence:
    where = {"resolution": "at resolution", "mitigation": "at mitigation", "note": "in a note"}.get(said, said)
    return Evidence(
        id=f"incident-{n}",
        source="incident",
        at=t(n * 60),
        summary=f"{who}, {where}: {words}",
        said=said,
        by=who,
    )


def test_which_words_are_the_stated_cause() -> None:
    note = statement(1, "note", "error rate 40% since deploy 2041")
    mitigation = statement(2, "mitigation", "rolled back deploy 2041")
    resolution = statement(3, "resolution", "fixed it")
    explicit = statement(4, "note", "the root cause was a halved pool size.", who="bob")
    severity = statement(5, "severity", "customers cannot pay", who="carol")
    assert stated_cause([note, mitigation, resolution, explicit]) == Stated(explicit, "a halved pool size", True)
    assert stated_cause([note, mitigation, resolution]) == Stated(resolution, "fixed it", False)
    assert stated_cause([note, mitigation]) == Stated(mitigation, "rolled back deploy 2041", False)
    assert stated_cause([note]) == Stated(note, "error rate 40% since deploy 2041", False)
    assert stated_cause([severity]) is None  # a reason for a severity says how bad, not why
    assert stated_cause([]) is None


def test_references_in_peoples_words() -> None:
    found = references("deploy 2041 broke it; PR #311 and #12 too; commit 9f8e7d6c; release v1.42; 200 users")
    assert [(r.kind, r.value) for r in found] == [
        ("deploy", "2041"),
        ("deploy", "v1.42"),
        ("pull", "311"),
        ("pull", "12"),
        ("sha", "9f8e7d6c"),
    ]
    commit = Evidence(id="changes-2", source="changes", at=t(0), summary="Commit 9f8e7d6 'pool: 50' by bob", link="")
    pull = Evidence(id="changes-3", source="changes", at=t(0), summary="PR #311 'halve the pool' merged by bob")
    hits = matching_changes(found, [commit, pull, deployment(2041, t(0))])
    assert {r.text: [c.id for c in cs] for r, cs in hits.items()} == {
        "deploy 2041": ["changes-1"],
        "release v1.42": [],
        "PR #311": ["changes-3"],
        "#12": [],
        "9f8e7d6c": ["changes-2"],  # a longer SHA said, the short one gathered
    }


def test_a_models_analysis_that_misses_the_stated_deploy_still_gets_its_items() -> None:
    """The seed's deployment rule applies to what the responders said even when the analysis (an LLM's) put
    the cause elsewhere: the items cite the responder's statement."""
    resolution = statement(
        3, "resolution", "root cause: connection pool exhausted after deploy 2041 halved the pool size"
    )
    elsewhere = Analysis(
        analyzer="llm:test",
        primary_cause=Claim(text="A traffic spike saturated the database.", evidence=["incident-3"]),
        confidence=0.6,
    )
    items = action_items(elsewhere, PostmortemPolicy(), date(2026, 3, 1), service="ledger", evidence=[resolution])
    titles = {i.title: i.evidence for i in items}
    assert titles["Add deployment validation of the pool size"] == ["incident-3"]
    assert titles["Roll out with canary deployments"] == ["incident-3"]
    assert action_items(elsewhere, PostmortemPolicy(), date(2026, 3, 1)) == []


def test_a_fix_in_words_with_a_deploy_just_before_earns_the_deployment_items() -> None:
    """ "rolled back" names no change; the deploy five minutes before the opening is the gathered suspect (a
    contributing factor): its items follow, cited to the deploy (the chaos suite's post-mortem case files them)."""
    opened = t(0)
    incident = IncidentState(
        key="payments-1",
        title="Payments down",
        service="payments",
        severity="sev1",
        status="resolved",
        opened_at=opened,
        resolved_at=t(120),
        resolved_by="alice",
        resolution_summary="rolled back",
        timeline=[
            TimelineEntry(at=opened, kind="opened", text="Payments down (from cli)"),
            TimelineEntry(at=t(120), kind="resolved", text="resolved by alice: rolled back", by="alice"),
        ],
    )
    deployed = SourceResult(source="changes", status="ok", evidence=[deployment(1, t(-300))])
    _, request, analysis = draft(incident, deployed)
    assert analysis.primary_cause is not None and analysis.primary_cause.stated == "rolled back"
    items = action_items(analysis, POLICY, TODAY, service="payments", evidence=request.evidence)
    assert [(i.title, i.evidence) for i in items[:2]] == [
        ("Add deployment validation", ["changes-1", "incident-1"]),
        ("Roll out with canary deployments", ["changes-1", "incident-1"]),
    ]
    # Without the deploy, words that name no change earn no deployment item.
    _, request, analysis = draft(incident, SourceResult(source="changes", status="ok", evidence=[]))
    titles = [i.title for i in action_items(analysis, POLICY, TODAY, service="payments", evidence=request.evidence)]
    assert not any("deploy" in title.lower() for title in titles), titles
