"""The post-mortem report: its view-model, its Markdown (a golden file) and HTML, untrusted text, the sandbox.

The golden file is tests/fixtures/postmortem-golden.md. After an intended change to the template or the
view-model, regenerate it with `TOCSIN_REGENERATE_GOLDEN=1 .venv/bin/pytest tests/unit/test_postmortem_report.py`
and review the diff; without the variable the test compares byte for byte.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.postmortem_report import ReportActivities
from tests.support.paths import FIXTURES
from tocsin.incident.contracts import EscalationCursor, IncidentState, TimelineEntry
from tocsin.postmortem.artifacts import ArtifactStore
from tocsin.postmortem.contracts import (
    ActionItem,
    Analysis,
    ArtifactRef,
    Claim,
    Evidence,
    Impact,
    PublishedItem,
    ReportRequest,
    SeriesSummary,
    SourceResult,
    TimelineEvent,
)
from tocsin.postmortem.report.render import ReportRenderer, ReportTemplateError, md_escape
from tocsin.postmortem.report.view import build_view

GOLDEN = FIXTURES / "postmortem-golden.md"
T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
SECTIONS = [
    "## Summary",
    "## Impact",
    "## Timeline",
    "## Root cause",
    "## Contributing factors",
    "## What went well",
    "## What went poorly",
    "## Action items",
    "## Lessons learned",
    "## Evidence sources",
    "## Review notes",
    "## Full timeline",
]


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def report_request(**changes: Any) -> ReportRequest:
    """A fixed, realistic sev1: acknowledged late, a runbook that worked, a page that failed, logs missing."""
    incident = IncidentState(
        key="serviceavailabilitylow-checkout-prod-311b734629",
        title="Checkout availability below 99.5%",
        service="checkout",
        severity="sev1",
        status="resolved",
        labels={"alertname": "ServiceAvailabilityLow", "environment": "prod"},
        opened_at=T0,
        first_paged_at=at(0.1),
        acknowledged_by="alice",
        acknowledged_at=at(7),
        mitigated_at=at(12),
        resolved_by="alice",
        resolved_at=at(41),
        resolution_summary="rolled back 1.42",
        escalation=EscalationCursor(step=1, breaches=["response"]),
        timeline=[
            TimelineEntry(at=T0, kind="opened", text="Checkout availability below 99.5% (from alertmanager)"),
            TimelineEntry(at=at(0), kind="page", text="level 1: paging primary_oncall via pagerduty (pagerduty)"),
            TimelineEntry(at=at(0.1), kind="delivered", text="pagerduty → primary_oncall: PD123"),
            TimelineEntry(at=at(5), kind="breach", text="not acknowledged within 5 minutes (response target missed)"),
            TimelineEntry(at=at(5.1), kind="delivery_failed", text="sms → +15550100: twilio answered 400"),
            TimelineEntry(at=at(5.2), kind="delivered", text="slack → #inc-checkout: C1/1.2"),
            TimelineEntry(at=at(7), kind="acknowledged", text="acknowledged", by="alice"),
            TimelineEntry(at=at(9), kind="runbook", text="rollback-checkout step undo (kubernetes.undo): done: ok"),
            TimelineEntry(at=at(11), kind="runbook", text="rollback-checkout succeeded: verified: error rate 0.2%"),
            TimelineEntry(at=at(11.5), kind="remediation", text="scale_up: failed — deployment not found"),
            TimelineEntry(at=at(41), kind="resolved", text="rolled back 1.42", by="alice"),
        ],
    )
    sources = [
        SourceResult(
            source="incident",
            status="ok",
            evidence=[
                Evidence(id="incident-1", source="incident", at=T0, summary="opened from alertmanager"),
                Evidence(id="incident-2", source="incident", at=at(7), summary="acknowledged by alice"),
            ],
        ),
        SourceResult(
            source="metrics",
            status="ok",
            evidence=[
                Evidence(id="metrics-1", source="metrics", at=at(1), summary="error_rate above 1% from 10:01"),
                Evidence(
                    id="metrics-2",
                    source="metrics",
                    at=at(4),
                    summary="error_rate peaked at 38.5%",
                    link="https://prometheus.example.com/graph?g0.expr=error_rate",
                ),
            ],
            series=[SeriesSummary(name="error_rate", onset=at(1), peak_at=at(4), peak=0.385, recovery=at(12))],
            artifact=ArtifactRef(
                path="serviceavailabilitylow-checkout-prod-311b734629/metrics.json", sha256="0" * 64, size=10
            ),
        ),
        SourceResult(source="logs", status="failed", reason="Loki answered 502 three times"),
        SourceResult(
            source="changes",
            status="ok",
            evidence=[
                Evidence(
                    id="changes-1",
                    source="changes",
                    at=at(-20),
                    summary="deploy checkout 1.42 (payment client upgrade)",
                    link="abc1234",
                )
            ],
        ),
        SourceResult(source="pagerduty", status="skipped", reason="PagerDuty not configured"),
    ]
    timeline = [
        TimelineEvent(id="changes-1", at=at(-20), source="changes", text="deploy checkout 1.42"),
        TimelineEvent(id="incident-1", at=T0, source="incident", text="opened from alertmanager", kind="opened"),
        # A burst of chatter: one line in the story, every row in the full timeline.
        TimelineEvent(
            id="incident-3",
            at=at(0.1),
            source="incident",
            text="delivered: pagerduty → primary_oncall: PD123",
            kind="delivered",
        ),
        TimelineEvent(
            id="incident-4",
            at=at(0.2),
            source="incident",
            text="sync: statuspage page-1: investigating → identified",
            kind="sync",
        ),
        TimelineEvent(id="metrics-1", at=at(1), source="metrics", text="error_rate above 1%"),
        TimelineEvent(id="incident-2", at=at(7), source="incident", text="acknowledged by alice"),
    ]
    impact = Impact(
        duration=timedelta(minutes=41),
        time_to_acknowledge=timedelta(minutes=7),
        time_to_mitigate=timedelta(minutes=12),
        time_to_resolve=timedelta(minutes=41),
        peak_error_rate=0.385,
        lowest_availability=0.9712,
        worst_latency_p95=1.8,
        slo_breaches=["availability 99.5%", "error_rate 1%"],
        services=["checkout", "payments"],
        affected_users=12400,
    )
    analysis = Analysis(
        analyzer="built-in",
        primary_cause=Claim(
            text="Deploy 1.42 of checkout raised the error rate within minutes",
            evidence=["changes-1", "metrics-2"],
        ),
        contributing_factors=[Claim(text="The SMS page to the secondary on-call failed", evidence=["incident-2"])],
        preventive_measures=[Claim(text="Canary deploys for checkout", evidence=["changes-1"])],
        lessons_learned=[Claim(text="Rollback by runbook worked in 2 minutes", evidence=[])],
        action_items=[],
        confidence=0.7,
        notes=["1 claim dropped: it cited logs-3, which was not gathered"],
    )
    items = [
        ActionItem(
            title="Add a canary stage to checkout deploys",
            description="Route 5% of traffic to the new version for 10 minutes.",
            owner="sre",
            priority="P1",
            due=date(2026, 3, 8),
            origin="analysis",
            evidence=["changes-1"],
        ),
        ActionItem(title="Fix the SMS sender number", owner="platform", priority="P2", due=date(2026, 3, 31)),
    ]
    fields: dict[str, Any] = {
        "incident": incident,
        "sources": sources,
        "timeline": timeline,
        "impact": impact,
        "analysis": analysis,
        "action_items": items,
        "revision": 2,
        "review_notes": ["bob: name the payment client upgrade in the summary"],
    }
    fields.update(changes)
    return ReportRequest(**fields)


def regenerate_golden(markdown: str) -> bool:
    """Write the golden file when TOCSIN_REGENERATE_GOLDEN=1; otherwise leave it alone and say so."""
    if os.environ.get("TOCSIN_REGENERATE_GOLDEN") != "1":
        return False
    GOLDEN.write_text(markdown, encoding="utf-8")
    return True


@pytest.fixture
def renderer(tmp_path: Path) -> ReportRenderer:
    return ReportRenderer(tmp_path / "home")


def test_markdown_matches_the_golden_file(renderer: ReportRenderer) -> None:
    markdown = renderer.render(report_request()).markdown
    if regenerate_golden(markdown):
        pytest.skip(f"regenerated {GOLDEN}")
    assert markdown == GOLDEN.read_text(encoding="utf-8")


def test_sections_in_order_with_their_content(renderer: ReportRenderer) -> None:
    markdown = renderer.render(report_request()).markdown
    positions = [markdown.index(f"\n{heading}\n") for heading in SECTIONS]
    assert positions == sorted(positions)
    assert markdown.startswith("# Post-mortem: Checkout availability below 99.5%\n")

    def section(heading: str) -> str:
        start = markdown.index(f"\n{heading}\n")
        following = [markdown.index(f"\n{h}\n") for h in SECTIONS if markdown.index(f"\n{h}\n") > start]
        return markdown[start : min(following, default=len(markdown))]

    assert "| Status | draft |" in markdown and "| Revision | 2 |" in markdown
    assert "| Analysis | built-in (confidence 70%) |" in markdown
    assert "| Time to acknowledge | 7m 0s |" in section("## Impact")
    assert "| Peak error rate | 38.5% |" in section("## Impact")
    assert "| Lowest availability | 97.12% |" in section("## Impact")
    assert "| Worst p95 latency | 1.8 s |" in section("## Impact")
    assert "| Affected users (estimate) | 12,400 |" in section("## Impact")
    assert "Estimated cost" not in markdown  # unknown: not shown
    # The timeline is in time order, each row citing its evidence.
    rows = [line for line in section("## Timeline").splitlines() if line.startswith("| 2026")]
    assert rows[0] == "| 2026-03-01 09:40:00 | changes | deploy checkout 1.42 | changes-1 |"
    assert rows[2] == (
        "| 2026-03-01 10:00:06 | incident | 1 notification delivered: PagerDuty; 1 sync: Statuspage "
        "| incident-3 … incident-4 |"
    )
    assert len(rows) == 5
    full = [line for line in section("## Full timeline").splitlines() if line.startswith("| 2026")]
    assert len(full) == 6 and "| delivered: pagerduty → primary_oncall: PD123 | incident-3 |" in full[2]
    assert "Deploy 1.42 of checkout raised the error rate within minutes [changes-1] [metrics-2]" in section(
        "## Root cause"
    )
    poorly = section("## What went poorly")
    assert "- Not acknowledged within 5 minutes (response target missed) (10:05 UTC)." in poorly
    assert "- Notification not delivered: sms → +15550100: twilio answered 400 (10:05 UTC)." in poorly
    assert "- Automatic action scale_up: failed — deployment not found (10:11 UTC)." in poorly
    well = section("## What went well")
    assert "- Runbook rollback-checkout succeeded: verified: error rate 0.2% (10:11 UTC)." in well
    assert "- Mitigated 12m 0s after opening; no mitigation target was missed." in well
    assert "Acknowledged" not in well  # the response target was missed: not something that went well
    assert "- 2 notifications delivered." in well
    items = section("## Action items")
    assert "| Add a canary stage to checkout deploys | sre | P1 | 2026-03-08 | not filed yet |" in items
    assert "| Fix the SMS sender number | platform | P2 | 2026-03-31 | not filed yet |" in items
    assert "- Canary deploys for checkout [changes-1]" in section("## Lessons learned")
    assert "- bob: name the payment client upgrade in the summary" in section("## Review notes")


def test_went_well_and_poorly_come_from_the_record() -> None:
    base = report_request().incident
    on_time = base.model_copy(
        update={
            "escalation": EscalationCursor(),
            "timeline": [e for e in base.timeline if e.kind not in ("breach", "delivery_failed", "remediation")],
        }
    )
    view = build_view(report_request(incident=on_time))
    well, poorly = [x.text for x in view.went_well], [x.text for x in view.went_poorly]
    assert well[0] == "The first page reached someone 6s after the incident opened."  # within 30 s
    assert well[1] == "Acknowledged by alice 7m 0s after opening; no response target was missed."
    assert well[-1] == "All 2 notifications delivered."
    assert not [line for line in poorly if "target" in line or "Notification" in line]

    failures = [
        TimelineEntry(at=at(20 + n), kind="delivery_failed", text=f"sms → +1555010{n}: twilio answered 400")
        for n in range(8)
    ]
    silent = base.model_copy(
        update={
            "acknowledged_at": None,
            "acknowledged_by": None,
            "escalation": EscalationCursor(),
            "timeline": failures,
        }
    )
    view = build_view(report_request(incident=silent))
    well, poorly = [x.text for x in view.went_well], [x.text for x in view.went_poorly]
    assert poorly[0] == "Notification not delivered: sms → +15550100: twilio answered 400 (10:20 UTC)."
    assert "And 3 more notifications not delivered." in poorly
    assert "The incident was not acknowledged before it was resolved." in poorly
    assert len([line for line in poorly if line.startswith("Notification")]) == 5
    assert not [line for line in well if line.startswith(("Acknowledged", "All"))]


def test_missing_sources_are_named(renderer: ReportRenderer) -> None:
    request = report_request()
    request = request.model_copy(update={"sources": [s for s in request.sources if s.source != "pagerduty"]})
    markdown = renderer.render(request).markdown
    evidence = markdown[markdown.index("## Evidence sources") :]
    assert "| logs | failed | Loki answered 502 three times | — |" in evidence
    assert "| pagerduty | skipped | not gathered | — |" in evidence  # absent from the request: still named
    assert "| metrics | ok | 2 evidence items, 1 series |" in evidence
    assert (
        "**Missing evidence:** logs (failed: Loki answered 502 three times); pagerduty (skipped: not gathered). "
        "The analysis did not see it." in evidence
    )
    assert "Evidence could not be gathered from: logs (failed: Loki answered 502 three times)" in markdown

    complete = report_request(sources=[s for s in request.sources if s.status == "ok"])
    complete = complete.model_copy(
        update={
            "sources": [
                *complete.sources,
                SourceResult(source="logs", status="ok"),
                SourceResult(source="pagerduty", status="ok"),
            ]
        }
    )
    assert "**Missing evidence:** none; every source answered." in renderer.render(complete).markdown


def test_cited_evidence_and_issue_links(renderer: ReportRenderer) -> None:
    published = [
        PublishedItem(
            title="add a canary stage to  checkout deploys",  # matched by title, case and spaces aside
            owner="sre",
            due=date(2026, 3, 8),
            issue_number=12,
            issue_url="https://github.com/acme/ops/issues/12",
        ),
        PublishedItem(title="Fix the SMS sender number", owner="platform", due=date(2026, 3, 31)),
    ]
    view = build_view(report_request(), published)
    assert [(i.issue, i.issue_url) for i in view.action_items] == [
        ("#12", "https://github.com/acme/ops/issues/12"),
        ("not filed yet", ""),
    ]
    assert [e.id for e in view.evidence] == ["changes-1", "metrics-2", "incident-2"]
    rendered = renderer.render(report_request(), published)
    assert "| [#12](https://github.com/acme/ops/issues/12) |" in rendered.markdown
    assert '<a href="https://github.com/acme/ops/issues/12" rel="noopener noreferrer">#12</a>' in rendered.html


UNTRUSTED = "Checkout | down\n## Injected heading\n<script>alert('x')</script> [click](javascript:alert(1)) `code`"


def _cells(row: str) -> list[str]:
    """A Markdown table row's cells, splitting only on unescaped pipes."""
    return re.split(r"(?<!\\)\|", row.strip())[1:-1]


def test_untrusted_text_cannot_break_the_tables_or_the_html(renderer: ReportRenderer) -> None:
    request = report_request()
    incident = request.incident.model_copy(update={"title": UNTRUSTED})
    sources = [
        s.model_copy(
            update={"evidence": [e.model_copy(update={"summary": f"{e.summary} | {UNTRUSTED}"}) for e in s.evidence]}
        )
        for s in request.sources
    ]
    timeline = [t.model_copy(update={"text": UNTRUSTED}) for t in request.timeline]
    items = [request.action_items[0].model_copy(update={"title": UNTRUSTED, "owner": "sre|ops"})]
    analysis = request.analysis.model_copy(update={"primary_cause": Claim(text=UNTRUSTED, evidence=["metrics-2"])})
    evil = request.model_copy(
        update={
            "incident": incident,
            "sources": sources,
            "timeline": timeline,
            "action_items": items,
            "analysis": analysis,
        }
    )
    rendered = renderer.render(evil)
    markdown, html = rendered.markdown, rendered.html

    # No line of the Markdown starts a heading except the report's own, nothing is raw HTML or a live link.
    headings = [line for line in markdown.splitlines() if line.startswith("#")]
    assert all(h.startswith(("# Post-mortem:", "## ", "### ")) for h in headings)
    assert not [line for line in markdown.splitlines() if line.lstrip().startswith(("## Injected", "<"))]
    assert "<script>" not in markdown and "&lt;script&gt;" in markdown
    assert not re.search(r"(?<!\\)\]\(javascript:", markdown)  # only escaped brackets: no link
    assert "\\[click\\](javascript:alert(1))" in markdown
    assert "\\`code\\`" in markdown
    # Every table keeps its column count: the pipes in the text are escaped, its newlines folded.
    for block in re.findall(r"((?:^\|.*\|$\n?)+)", markdown, flags=re.M):
        rows = block.strip("\n").splitlines()
        widths = {len(_cells(row)) for row in rows}
        assert len(widths) == 1, rows
    timeline_rows = [line for line in markdown.splitlines() if line.startswith("| 2026-03-01")]
    # Every row but the folded ones (their text is counts and channel names) carries the untrusted text escaped.
    unfolded = [row for row in timeline_rows if "…" not in _cells(row)[3]]
    assert len(unfolded) == len(timeline_rows) - 1
    assert all(_cells(row)[2].strip() == md_escape(UNTRUSTED) for row in unfolded)
    assert md_escape(UNTRUSTED) == (
        "Checkout \\| down ## Injected heading &lt;script&gt;alert('x')&lt;/script&gt; "
        "\\[click\\](javascript:alert(1)) \\`code\\`"
    )
    # The HTML escapes it all and has no script anywhere.
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert 'href="javascript' not in html
    assert "Content-Security-Policy" in html


def test_block_markdown_cannot_be_injected(renderer: ReportRenderer) -> None:
    request = report_request()
    analysis = request.analysis.model_copy(
        update={"contributing_factors": [Claim(text="# Big heading"), Claim(text="1. numbered\n- listed")]}
    )
    incident = request.incident.model_copy(update={"title": "x\n# y"})
    markdown = renderer.render(request.model_copy(update={"incident": incident, "analysis": analysis})).markdown
    assert markdown.startswith("# Post-mortem: x # y\n")
    assert "\n# y" not in markdown
    assert "\n- \\# Big heading\n" in markdown
    assert "\n- 1\\. numbered - listed\n" in markdown


def test_html_has_every_section_and_no_scripts(renderer: ReportRenderer) -> None:
    html = renderer.render(report_request()).html
    titles = ["Summary", "Impact", "Timeline", "Root cause", "Contributing factors", "What went well"]
    titles += ["What went poorly", "Action items", "Lessons learned", "Evidence sources", "Review notes"]
    positions = [html.index(f">{t}</h2>") for t in titles]
    assert positions == sorted(positions)
    assert html.startswith("<!doctype html>") and "<script" not in html and "src=" not in html
    assert "<td>Peak error rate</td><td>38.5%</td>" in html
    assert '<a href="https://prometheus.example.com/graph?g0.expr=error_rate" rel="noopener noreferrer">' in html
    assert '<td class="missing">failed</td><td>Loki answered 502 three times</td>' in html


def test_a_user_template_replaces_the_built_in_one(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "templates").mkdir(parents=True)
    (home / "templates" / "postmortem.md.j2").write_text(
        "# {{ view.key }}: {{ view.title }}\n"
        "{% for row in view.sources %}- {{ row.source }} {{ row.status }}\n{% endfor %}"
    )
    rendered = ReportRenderer(home).render(
        report_request(incident=report_request().incident.model_copy(update={"title": "a|b"}))
    )
    assert rendered.markdown.splitlines()[:3] == [
        "# serviceavailabilitylow-checkout-prod-311b734629: a\\|b",  # escaped in a user template too
        "- incident ok",
        "- metrics ok",
    ]
    assert rendered.html.startswith("<!doctype html>")  # the built-in HTML template: not overridden


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ view.__class__.__init__.__globals__ }}",
        "{{ view.sources.__class__ }}",
    ],
)
def test_a_user_template_is_sandboxed(tmp_path: Path, source: str) -> None:
    home = tmp_path / "home"
    (home / "templates").mkdir(parents=True)
    (home / "templates" / "postmortem.md.j2").write_text(source)
    with pytest.raises(ReportTemplateError, match=r"postmortem\.md\.j2: refused by the sandbox: access to attribute"):
        ReportRenderer(home).render(report_request())


def test_a_user_template_with_a_mistake_is_a_clear_error(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "templates").mkdir(parents=True)
    (home / "templates" / "postmortem.md.j2").write_text("line one\n{{ view.nonexistent }}\n")
    with pytest.raises(ReportTemplateError, match=r"UndefinedError: .*nonexistent"):
        ReportRenderer(home).render(report_request())
    (home / "templates" / "postmortem.md.j2").write_text("{% for x in view.sources %}\n")
    with pytest.raises(ReportTemplateError, match=r"postmortem\.md\.j2:1: Unexpected end of template"):
        ReportRenderer(home).render(report_request())


# --- the activity --------------------------------------------------------------------------------------


def activities(tmp_path: Path) -> ReportActivities:
    return ReportActivities(ArtifactStore(tmp_path / "artifacts"), tmp_path / "postmortems", tmp_path, env={})


async def test_render_activity_writes_both_files_and_the_artifacts(tmp_path: Path) -> None:
    acts = activities(tmp_path)
    request = report_request()
    draft = await ActivityEnvironment().run(acts.render, request)
    key = request.incident.key
    assert (draft.key, draft.revision) == (key, 2)
    assert draft.markdown.path == f"{key}/report-r2.md" and draft.markdown.media_type == "text/markdown; charset=utf-8"
    assert draft.html.path == f"{key}/report-r2.html" and draft.html.media_type == "text/html; charset=utf-8"
    markdown = (tmp_path / "postmortems" / f"{key}.md").read_text()
    assert markdown == GOLDEN.read_text() or os.environ.get("TOCSIN_REGENERATE_GOLDEN") == "1"
    assert acts.store.read_text(draft.markdown) == markdown
    assert acts.store.read_text(draft.html) == (tmp_path / "postmortems" / f"{key}.html").read_text()
    assert sorted(p.name for p in (tmp_path / "postmortems").iterdir()) == [f"{key}.html", f"{key}.md"]  # no temp left
    again = await ActivityEnvironment().run(acts.render, request)
    assert again == draft  # the same request renders the same bytes: a retry changes nothing


async def test_render_activity_fails_for_good_on_a_bad_template(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "postmortem.html.j2").write_text("{{ ''.__class__.__mro__ }}")
    with pytest.raises(ApplicationError) as caught:
        await ActivityEnvironment().run(activities(tmp_path).render, report_request())
    assert caught.value.type == "ReportTemplateError" and caught.value.non_retryable
    assert "postmortem.html.j2: refused by the sandbox" in str(caught.value)
    assert not (tmp_path / "postmortems").exists()


def test_the_built_in_report_templates_never_come_from_the_working_directory(tmp_path, monkeypatch) -> None:
    from tocsin.postmortem.report.render import HTML_TEMPLATE, MARKDOWN_TEMPLATE, template_dir
    from tocsin.sandboxed_templates import BUILTIN_DIRS

    planted = tmp_path / "templates"
    planted.mkdir()
    for name in (MARKDOWN_TEMPLATE, HTML_TEMPLATE):
        (planted / name).write_text("planted")
    monkeypatch.chdir(tmp_path)
    assert template_dir() == BUILTIN_DIRS[0], "one lookup for every built-in template, as the status page's"
