"""Issue #15, item 5: the post-mortem judged against real public post-mortems.

Each directory under tests/fixtures/public_postmortems/ rebuilds one well-known incident (its README cites the
published post-mortem): the alerts (Alertmanager's webhook), the Prometheus range answers per SLI, Loki's
query_range answer, the repository's deployments, pull requests and commits, and the incident record with what
the responders wrote. `published.yaml` holds what the published post-mortem says: the root cause, the trigger
and the remediation items, each as keywords.

The evidence goes through the real sources (Prometheus, Loki and GitHub played by one loopback server in their
documented shapes), then the pure steps the post-mortem workflow runs: merged timeline, impact, the built-in
analyzer, action items, the report. Each draft is scored: root cause named, trigger named, share of the
published remediation items some action item covers. SCORES below are what today's analyzer earns; README's
"Post-mortem quality" table must say the same, so a better analyzer moves both. The same scenarios then go
through the OpenAI-compatible path against a local fake model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.postmortem_fakes import FakeChanges
from tests.support.vendor_server import Recorded, Reply, VendorServer
from tocsin.incident.contracts import IncidentState
from tocsin.policy.postmortem import PostmortemPolicy
from tocsin.postmortem.action_items import action_items
from tocsin.postmortem.artifacts import ArtifactStore
from tocsin.postmortem.builtin_analyzer import builtin_analysis
from tocsin.postmortem.contracts import (
    ActionItem,
    Analysis,
    AnalysisRequest,
    GatherRequest,
    IncidentEvidenceRequest,
    ReportRequest,
    SourceResult,
)
from tocsin.postmortem.impact import compute_impact
from tocsin.postmortem.llm.client import analyze
from tocsin.postmortem.report.render import ReportRenderer
from tocsin.postmortem.sources.changes import gather_changes
from tocsin.postmortem.sources.incident import incident_evidence
from tocsin.postmortem.sources.logs import gather_logs
from tocsin.postmortem.sources.metrics import gather_metrics
from tocsin.postmortem.sources.results import skipped
from tocsin.postmortem.timeline import merge_timeline

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "public_postmortems"
README = Path(__file__).resolve().parents[2] / "README.md"
SCENARIOS = sorted(p.name for p in FIXTURES.iterdir() if (p / "published.yaml").is_file())
TOKEN = "ghp_publicpostmortems0001"
MODEL = "test-model"
LLM_PATH = "/v1/chat/completions"

# What today's built-in analyzer earns on each scenario: (root cause named, trigger named, items covered).
# Asserted exactly, so a regression fails and an improvement is recorded here and in README's table.
SCORES: dict[str, tuple[bool, bool, Fraction]] = {
    "aws-s3-2017-02-28-capacity-removal": (True, True, Fraction(4, 4)),
    "cloudflare-2019-07-02-waf-regex": (True, True, Fraction(6, 7)),
    "github-2018-10-21-network-partition": (True, True, Fraction(3, 4)),
}


# -- the scenarios ----------------------------------------------------------------------------------------


@dataclass
class Scenario:
    name: str
    incident: IncidentState
    policy: PostmortemPolicy
    alerts: dict[str, Any]
    prometheus: dict[str, Any]
    loki: dict[str, Any]
    github: dict[str, Any]
    published: dict[str, Any]


def load(name: str) -> Scenario:
    where = FIXTURES / name

    def read(file: str) -> Any:
        text = (where / file).read_text()
        return yaml.safe_load(text) if file.endswith(".yaml") else json.loads(text)

    return Scenario(
        name=name,
        incident=IncidentState.model_validate(read("incident.yaml")),
        policy=PostmortemPolicy.model_validate(read("policy.yaml")),
        alerts=read("alerts.json"),
        prometheus=read("prometheus.json"),
        loki=read("loki.json"),
        github=read("github.json"),
        published=read("published.yaml"),
    )


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def play(server: VendorServer, scenario: Scenario) -> dict[str, str]:
    """One loopback server answers as Prometheus (by the SLI whose query was asked), Loki and GitHub; returns
    the worker's environment pointing every source at it."""
    queries = {
        name: (sli.query.replace("{{ $labels.service }}", scenario.incident.service), scenario.prometheus[name])
        for name, sli in scenario.policy.slis.items()
    }

    def prometheus(request: Recorded) -> Reply:
        asked = request.query["query"][0]
        [answer] = [answer for query, answer in queries.values() if query == asked]
        return Reply(json=answer)

    server.on("GET", "/api/v1/query_range", prometheus)
    server.on("GET", "/loki/api/v1/query_range", Reply(json=scenario.loki))
    github = scenario.github
    fake = FakeChanges(server, repo=github["repo"])
    for d in github["deployments"]:  # newest first, as GitHub lists them
        statuses = [(state, utc(at)) for state, at in reversed(d["statuses"])]
        fake.deployment(d["id"], utc(d["created"]), *statuses, sha=d["sha"])
        fake.deployments[-1]["creator"]["login"] = d["creator"]
    for p in github["pulls"]:
        fake.pull(p["number"], p["title"], utc(p["merged"]), utc(p["merged"]), merger=p["merger"])
    for c in github["commits"]:
        fake.commit(c["sha"], c["message"], utc(c["when"]), c["login"])
    return {
        "TOCSIN_PROMETHEUS_URL": server.url,
        "TOCSIN_LOKI_URL": server.url,
        "TOCSIN_GITHUB_REPO": github["repo"],
        "GITHUB_TOKEN": TOKEN,
        "TOCSIN_GITHUB_API_URL": server.url,
    }


async def gather(scenario: Scenario, env: dict[str, str], store: ArtifactStore) -> list[SourceResult]:
    """The sources as the post-mortem's gather activities run them (PagerDuty is not configured)."""
    incident = scenario.incident
    assert incident.resolved_at is not None
    request = GatherRequest(
        key=incident.key,
        service=incident.service,
        severity=incident.severity,
        opened_at=incident.opened_at,
        resolved_at=incident.resolved_at,
        settings=scenario.policy,
    )
    own = incident_evidence(IncidentEvidenceRequest(incident=incident, parent_workflow_id="w", parent_run_id="r"))
    return [
        own,
        await gather_metrics(request, store, env),
        await gather_logs(request, store, env),
        await gather_changes(request, store, env),
        skipped("pagerduty", "TOCSIN_PAGERDUTY_API_TOKEN is not set"),
    ]


def analysis_request(scenario: Scenario, sources: list[SourceResult]) -> AnalysisRequest:
    incident = scenario.incident
    series = [s for source in sources for s in source.series]
    return AnalysisRequest(
        key=incident.key,
        title=incident.title,
        service=incident.service,
        severity=incident.severity,
        timeline=merge_timeline(sources),
        evidence=[e for source in sources for e in source.evidence],
        series=series,
        impact=compute_impact(incident, series, scenario.policy),
        settings=scenario.policy,
    )


# -- the score --------------------------------------------------------------------------------------------


def covers(text: str, keywords: list[str | list[str]]) -> bool:
    """Every keyword appears (a list: one of its words, the same notion said differently), case-insensitive."""
    lowered = text.casefold()
    return all(any(w.casefold() in lowered for w in ([k] if isinstance(k, str) else k)) for k in keywords)


@dataclass(frozen=True)
class Score:
    root_cause: bool
    trigger: bool
    covered: list[str]  # the published items some action item covers
    total: int

    @property
    def items(self) -> Fraction:
        return Fraction(len(self.covered), self.total)

    def row(self) -> tuple[bool, bool, Fraction]:
        return self.root_cause, self.trigger, self.items


def score(published: dict[str, Any], analysis: Analysis, items: list[ActionItem], request: AnalysisRequest) -> Score:
    cause = analysis.primary_cause
    text = cause.text if cause else ""
    trigger = published["trigger"]
    if trigger["change"] is not None:
        # The change itself: its id in the cause's words, or a cited change whose summary carries it.
        cited = [e.summary for e in request.evidence if cause and e.id in cause.evidence and e.source == "changes"]
        token = re.compile(rf"(?<![\w.]){re.escape(trigger['change'])}(?![\w])")
        named = any(token.search(t) for t in [text, *cited])
    else:  # not a change any source records (a command, maintenance): the cause must say what it was
        named = covers(text, trigger["keywords"])
    covered = [
        item["published"]
        for item in published["remediation"]
        if any(covers(f"{i.title} {i.description}", item["keywords"]) for i in items)
    ]
    return Score(covers(text, published["root_cause"]["keywords"]), named, covered, len(published["remediation"]))


# -- the built-in path ------------------------------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[VendorServer]:
    with VendorServer() as running:
        yield running


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "artifacts")


def test_every_scenario_is_scored_and_cites_its_source() -> None:
    assert len(SCENARIOS) >= 3 and sorted(SCORES) == SCENARIOS
    for name in SCENARIOS:
        readme = (FIXTURES / name / "README.md").read_text()
        assert re.search(r"^Source: .+\nhttps://\S+$", readme, re.MULTILINE), f"{name}: README cites no source"
        scenario = load(name)
        # The alerts are the incident's first alert: the record's clock starts at the earliest one.
        first = min(utc(a["startsAt"].rstrip("Z")) for a in scenario.alerts["alerts"])
        assert scenario.incident.first_alert_at == first


@pytest.mark.parametrize("name", SCENARIOS)
async def test_builtin_draft_against_the_published_postmortem(
    name: str, server: VendorServer, store: ArtifactStore, tmp_path: Path
) -> None:
    scenario = load(name)
    sources = await gather(scenario, play(server, scenario), store)
    assert [(s.source, s.status, s.reason) for s in sources[1:4]] == [
        ("metrics", "ok", ""),
        ("logs", "ok", ""),
        ("changes", "ok", ""),
    ]
    assert server.unmatched == []
    request = analysis_request(scenario, sources)
    analysis = builtin_analysis(request)
    items = action_items(
        analysis, scenario.policy, date(2026, 12, 3), service=scenario.incident.service, evidence=request.evidence
    )
    result = score(scenario.published, analysis, items, request)

    assert analysis.analyzer == "built-in" and analysis.primary_cause is not None
    # The responders' resolution is the cause, cited to their words.
    [resolution] = [e for e in request.evidence if e.said == "resolution"]
    assert analysis.primary_cause.evidence[0] == resolution.id
    assert result.row() == SCORES[name], (result, [i.title for i in items])
    assert result.root_cause and result.trigger  # the thresholds the issue sets; items: SCORES' fractions

    report = ReportRequest(
        incident=scenario.incident,
        sources=sources,
        timeline=request.timeline,
        impact=request.impact,
        analysis=analysis,
        action_items=items,
    )
    markdown = ReportRenderer(tmp_path).render(report).markdown
    root = markdown[markdown.index("## Root cause") : markdown.index("## Contributing factors")]
    assert analysis.primary_cause.text.split(". ")[0] in root and f"[{resolution.id}]" in root
    for item in items:
        assert f"| {item.title} |" in markdown


# Without the responders' words, what the data alone earns: (root cause named, trigger named). Only a trigger
# that is a change in the repository is found, by the correlation; no cause is, since the analyzer does not read
# log lines or non-SLO metrics for one.
DATA_ALONE = {
    "aws-s3-2017-02-28-capacity-removal": (False, False),
    "cloudflare-2019-07-02-waf-regex": (False, True),
    "github-2018-10-21-network-partition": (False, False),
}


@pytest.mark.parametrize("name", SCENARIOS)
async def test_without_the_responders_words(name: str, server: VendorServer, store: ArtifactStore) -> None:
    scenario = load(name)
    incident = scenario.incident
    timeline = [e for e in incident.timeline if e.kind != "note"]
    for entry in timeline:
        if entry.kind in ("mitigated", "resolved"):  # the entry stays, its words go
            entry.text = f"{entry.kind} by {entry.by}"
    scenario.incident = incident.model_copy(update={"timeline": timeline, "resolution_summary": None})
    sources = await gather(scenario, play(server, scenario), store)
    request = analysis_request(scenario, sources)
    assert not [e for e in request.evidence if e.said is not None]
    analysis = builtin_analysis(request)
    items = action_items(
        analysis, scenario.policy, date(2026, 12, 3), service=incident.service, evidence=request.evidence
    )
    result = score(scenario.published, analysis, items, request)
    assert (result.root_cause, result.trigger) == DATA_ALONE[name], analysis.primary_cause


def test_readme_reports_the_scores() -> None:
    """README's "Post-mortem quality" table says what SCORES say: one row per scenario, linked to its fixture."""
    text = README.read_text()
    section = text[text.index("## Post-mortem quality") :]
    section = section[: section.index("\n## ", 1)] if "\n## " in section[1:] else section
    row = re.compile(
        r"^\| \[[^]]+\]\(tests/fixtures/public_postmortems/([\w-]+)/README\.md\) "
        r"\| (yes|no) \| (yes|no) \| (\d+)/(\d+) \|",
        re.M,
    )
    found = {m[0]: (m[1] == "yes", m[2] == "yes", int(m[3]), int(m[4])) for m in row.findall(section)}
    expected = {
        name: (cause, trigger, int(items * total), total)
        for name, (cause, trigger, items) in SCORES.items()
        for total in [len(load(name).published["remediation"])]
    }
    assert found == expected


# -- the LLM path -----------------------------------------------------------------------------------------


# Published items the LLM path's action items cover with the fake model above. Missed targets become items
# only from the analysis' contributing factors, so a model that leaves them out loses the "time to mitigate"
# item the built-in draft has for S3. The items from how the response went (status page, runbook, the
# dashboard down: tocsin.postmortem.response_items) come from the evidence, so the model's path keeps them.
LLM_COVERED = {
    "aws-s3-2017-02-28-capacity-removal": [
        "Remove capacity more slowly, with safeguards against taking any subsystem below its minimum required capacity",
        "Audit other operational tools for similar safety checks",
        "Run the Service Health Dashboard's administration console across multiple regions",
    ],
    "cloudflare-2019-07-02-waf-regex": [
        "Re-introduce the excessive CPU usage protection that got removed",
        "Manually inspect all 3,868 WAF Managed Rules for other possible excessive backtracking",
        "Introduce performance profiling for all rules to the test suite",
        "Change the SOP to do staged rollouts of rules, as for other software",
        "An emergency ability to take the Cloudflare Dashboard and API off Cloudflare's edge",
        "Automate the update of the Cloudflare Status page",
    ],
    "github-2018-10-21-network-partition": [
        "Adjust Orchestrator's configuration to prevent promoting database primaries across regional boundaries",
        "Accelerate the migration to a new status reporting mechanism",
        "Test failure assumptions proactively (fault injection and chaos engineering)",
    ],
}


def completion(content: dict[str, Any]) -> Reply:
    """OpenAI's chat completion, the model's JSON answer as the message content."""
    message = {"role": "assistant", "content": json.dumps(content)}
    return Reply(
        json={
            "id": "chatcmpl-public",
            "object": "chat.completion",
            "created": 1764251400,
            "model": MODEL,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 900, "completion_tokens": 200, "total_tokens": 1100},
        }
    )


def sent_evidence(request: Recorded) -> list[dict[str, Any]]:
    """The evidence lines of the user message, one JSON object each, as the model read them."""
    user = request.json["messages"][1]["content"]
    block = user[user.index("<evidence>\n") + len("<evidence>\n") : user.index("\n</evidence>")]
    return [json.loads(line) for line in block.splitlines() if line.startswith("{")]


def model(request: Recorded) -> Reply:
    """A model that answers from what it was sent: the cause cites the responders' resolution and a change or
    metric it saw; a contributing factor and an action item cite ids it made up."""
    seen = sent_evidence(request)
    [resolution] = [e["id"] for e in seen if e.get("said") == "resolution"]
    data = next(e["id"] for e in seen if e["source"] in ("changes", "metrics"))
    return completion(
        {
            "primary_cause": {"text": "As the responders found.", "evidence": [resolution, data]},
            "contributing_factors": [
                {"text": "A second change also broke it", "evidence": ["changes-99"]},
                {"text": "Symptoms began with the first alert", "evidence": [data]},
            ],
            "preventive_measures": [],
            "lessons_learned": [],
            "action_items": [
                {"title": "Guard the change path", "description": "", "priority": "P1", "evidence": [resolution]},
                {"title": "Invented", "description": "", "priority": "P1", "evidence": ["logs-404"]},
            ],
            "confidence": 0.7,
        }
    )


@pytest.mark.parametrize("name", SCENARIOS)
async def test_llm_path_carries_the_responders_words_and_keeps_only_real_citations(
    name: str, server: VendorServer, store: ArtifactStore
) -> None:
    scenario = load(name)
    env = play(server, scenario)
    sources = await gather(scenario, env, store)
    request = analysis_request(scenario, sources)
    server.on("POST", LLM_PATH, model)
    llm = {"TOCSIN_LLM_MODEL": MODEL, "OPENAI_API_KEY": "sk-test-public", "OPENAI_BASE_URL": f"{server.url}/v1"}
    analysis = await analyze(request, llm, today=date(2026, 12, 3))

    [call] = server.received("POST", LLM_PATH)
    user = call.json["messages"][1]["content"]
    seen = {e["id"]: e for e in sent_evidence(call)}
    # Every statement the responders made reached the model, attributed, with who said it and when.
    said = [e for e in request.evidence if e.said is not None]
    assert len(said) >= 3
    for statement in said:
        assert statement.summary in user
        assert (seen[statement.id]["said"], seen[statement.id]["by"]) == (statement.said, statement.by)
    resolution = next(e for e in said if e.said == "resolution")
    assert resolution.summary.startswith(f"{scenario.incident.resolved_by}, at resolution: root cause: ")

    assert analysis.analyzer == f"llm:{MODEL}"
    assert analysis.primary_cause is not None and analysis.primary_cause.evidence[0] == resolution.id
    assert set(analysis.primary_cause.evidence) <= {e.id for e in request.evidence}
    assert [c.text for c in analysis.contributing_factors] == ["Symptoms began with the first alert"]
    assert [i.title for i in analysis.action_items] == ["Guard the change path"]
    assert any("ids not gathered: changes-99, logs-404" in note for note in analysis.notes), analysis.notes

    # The pipeline's items: the model's, and the seed's rules applied to the gathered evidence too, so the
    # responders' stated deploy still brings its items when the model does not take it up.
    items = action_items(analysis, scenario.policy, date(2026, 12, 3), evidence=request.evidence)
    covered = score(scenario.published, analysis, items, request).covered
    assert covered == LLM_COVERED[name], [i.title for i in items]
