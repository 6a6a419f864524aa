"""The public status page: the pure view model (ordering, component status, history window, only the listed
components, titles worded by the policy, nothing internal leaking), its configuration, its template (sandboxed,
never from the working directory), its cache and routes with a fake source (switched off: 404), and an
unreachable Temporal. The whole path against a real Temporal: tests/integration/test_status_page_temporal.py."""

from __future__ import annotations

import asyncio
import json
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from jinja2.exceptions import SecurityError
from pydantic import SecretStr
from temporalio.client import Client

from tests.support.paths import ROOT
from tocsin.incident.contracts import AlertRecord, IncidentState, TimelineEntry
from tocsin.intake.contracts import IngestResult, NormalizedAlert
from tocsin.policy.schema import Policy
from tocsin.policy.status_page import StatusPagePolicy
from tocsin.receiver.app import create_app
from tocsin.receiver.config import ReceiverConfig, ReceiverConfigError
from tocsin.receiver.public_status import (
    IncidentSummary,
    StatusPage,
    StatusUnavailable,
    build_view,
    fetch_incidents,
    summarize,
)
from tocsin.receiver.public_status_setup import StatusPageConfig, load_status_config, template_dir, took
from tocsin.receiver.serve import temporal_app, temporal_status_page

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
# What an alert sender may write as a summary (the incident's title): markup, an internal host, a secret's story.
LEAK = "<script>alert('owned')</script> token rotation failed on vault-int-3.corp.internal"


def listing(*components: str, **titles: str) -> StatusPagePolicy:
    return StatusPagePolicy(components=list(components), titles=titles)


def incident(
    service: str = "checkout",
    severity: str = "sev2",
    status: str = "triggered",
    *,
    started: timedelta = timedelta(hours=1),
    resolved: timedelta | None = None,
) -> IncidentSummary:
    """An incident that started `started` before NOW (and was resolved `resolved` before NOW)."""
    return IncidentSummary(
        service=service,
        severity=severity,
        status=status,
        started_at=NOW - started,
        updated_at=NOW - (resolved if resolved is not None else started),
        resolved_at=NOW - resolved if resolved is not None else None,
    )


def secret_state(**overrides: Any) -> IncidentState:
    """An incident full of what must never reach a public page."""
    fields: dict[str, Any] = {
        "key": "payments-db-prod-7",
        "title": f"Payments slow: {LEAK}",
        "service": "payments",
        "severity": "sev1",
        "status": "acknowledged",
        "labels": {"pod": "secret-pod-7", "instance": "10.1.2.3:9100"},
        "response_workflow": "database_performance_degradation",
        "opened_at": NOW - timedelta(minutes=30),
        "acknowledged_by": "alice.oncall",
        "acknowledged_at": NOW - timedelta(minutes=20),
        "alerts": {
            "fp-1": AlertRecord(status="firing", summary="disk 97% on db-prod-7", first_seen=NOW, last_seen=NOW)
        },
        "timeline": [
            TimelineEntry(at=NOW - timedelta(minutes=30), kind="opened", text="Payments slow (from alertmanager)"),
            TimelineEntry(at=NOW - timedelta(minutes=25), kind="page", text="paging bob via phone +4915112345678"),
            TimelineEntry(at=NOW - timedelta(minutes=20), kind="acknowledged", text="acked", by="alice.oncall"),
            TimelineEntry(at=NOW - timedelta(minutes=10), kind="severity_changed", text="sev2 → sev1", by="carol"),
            TimelineEntry(at=NOW - timedelta(minutes=5), kind="note", text="runbook: restart pgbouncer", by="dave"),
            TimelineEntry(at=NOW - timedelta(minutes=2), kind="delivered", text="slack → #inc-payments: 1234.5"),
        ],
    }
    fields.update(overrides)
    return IncidentState(**fields)


SECRETS = [
    "Payments slow",
    "vault-int-3",
    "token rotation",
    "script",
    "secret-pod-7",
    "10.1.2.3",
    "database_performance_degradation",
    "alice",
    "bob",
    "carol",
    "dave",
    "+4915112345678",
    "pgbouncer",
    "db-prod-7",
    "#inc-payments",
    "payments-db-prod-7",
    "rolled back",
    "sev1",
    "sev2",
]


def page(fetch: Any = None, *, home: Path | None = None, **config: Any) -> StatusPage:
    async def nothing(since: datetime) -> list[IncidentSummary]:
        return []

    return StatusPage(fetch or nothing, StatusPageConfig(**config), clock=lambda: NOW.timestamp(), home=home)


# --- the view model -------------------------------------------------------------------------------------


def test_current_incidents_worst_impact_first_then_newest() -> None:
    view = build_view(
        [
            incident("minor-old", severity="sev3", started=timedelta(hours=5)),
            incident("partial-new", severity="sev2", started=timedelta(minutes=5)),
            incident("major-old", severity="sev1", started=timedelta(hours=3)),
            incident("partial-old", severity="sev2", started=timedelta(hours=2)),
            incident("major-new", severity="sev1", started=timedelta(minutes=1)),
        ],
        now=NOW,
        public=listing("major-new", "major-old", "partial-new", "partial-old", "minor-old"),
    )
    assert [i.component for i in view.incidents] == [
        "major-new",
        "major-old",
        "partial-new",
        "partial-old",
        "minor-old",
    ]
    assert [i.impact for i in view.incidents] == [
        "major_outage",
        "major_outage",
        "partial_outage",
        "partial_outage",
        "degraded_performance",
    ]
    assert view.history == []


def test_public_status_words_follow_the_statuspage_channel() -> None:
    view = build_view(
        [
            incident("a", status="triggered"),
            incident("b", status="acknowledged"),
            incident("c", status="mitigated"),
            incident("d", status="resolved", resolved=timedelta(minutes=1)),
        ],
        now=NOW,
        public=listing("a", "b", "c", "d"),
    )
    assert {i.component: i.status for i in view.incidents + view.history} == {
        "a": "investigating",
        "b": "identified",
        "c": "monitoring",
        "d": "resolved",
    }


def test_titles_are_worded_by_the_policy_per_severity_never_by_the_alert() -> None:
    states = [
        secret_state(key="a", service="checkout", severity="sev1"),
        secret_state(key="b", service="search", severity="sev2"),
        secret_state(key="c", service="api", severity="sev3"),
        secret_state(key="d", service="login", severity="sev4"),
    ]
    worded = build_view(states, now=NOW, public=listing("checkout", "search", "api", "login"))
    assert {i.component: i.title for i in worded.incidents} == {
        "checkout": "Major outage on checkout",
        "search": "Partial outage on search",
        "api": "Degraded performance on api",
        "login": "Degraded performance on login",
    }
    custom = listing("checkout", "search", "api", "login", sev1="Checkout is down <b>{component}</b>")
    view = build_view(states, now=NOW, public=custom)
    assert {i.component: i.title for i in view.incidents}["checkout"] == "Checkout is down <b>checkout</b>"
    assert {i.component: i.title for i in view.incidents}["search"] == "Partial outage on search"
    html = page().html(view)
    assert "Checkout is down &lt;b&gt;checkout&lt;/b&gt;" in html, "even the policy's words are escaped"
    for text in (view.model_dump_json(), html):
        assert "vault-int-3" not in text and "token rotation" not in text and "Payments slow" not in text


def test_an_unlisted_service_never_appears() -> None:
    incidents = [
        incident("vault-int", severity="sev1"),
        incident(
            "vault-int", severity="sev2", status="resolved", started=timedelta(hours=3), resolved=timedelta(hours=2)
        ),
        incident(
            "checkout", severity="sev3", status="resolved", started=timedelta(hours=3), resolved=timedelta(hours=1)
        ),
    ]
    view = build_view(incidents, now=NOW, public=listing("checkout"))
    assert [(c.name, c.status) for c in view.components] == [("checkout", "operational")]
    assert view.incidents == []
    assert [i.component for i in view.history] == ["checkout"]
    assert view.status == "operational" and view.headline == "All systems operational"
    for text in (view.model_dump_json(), page().html(view)):
        assert "vault-int" not in text
    # Nothing listed: nothing shown, and the page does not claim that all is well.
    empty = build_view(incidents, now=NOW)
    assert empty.components == [] and empty.incidents == [] and empty.history == []
    assert empty.headline == "No components are listed on this page"


def test_a_storm_incident_is_not_a_public_component() -> None:
    with pytest.raises(ValueError, match="storm incident, not a component"):
        listing("checkout", "storm")
    # Even were it listed (a policy decoded without validation), the storm incident itself is never shown.
    forced = StatusPagePolicy.model_construct(components=["checkout", "storm"], titles={}, enabled=True)
    view = build_view(
        [incident("checkout", severity="sev1"), incident("storm", severity="sev1")], now=NOW, public=forced
    )
    assert [i.component for i in view.incidents] == ["checkout"]


def test_each_component_shows_its_worst_open_incident() -> None:
    view = build_view(
        [
            incident("checkout", severity="sev3"),
            incident("checkout", severity="sev1"),
            incident("search", severity="sev2"),
            incident("login", severity="sev1", status="mitigated"),
            incident("billing", severity="sev1", status="resolved", resolved=timedelta(days=1)),
        ],
        now=NOW,
        public=listing("search", "api", "checkout", "billing", "login"),
    )
    # Listed components only, in their order, even when operational.
    assert [(c.name, c.status) for c in view.components] == [
        ("search", "partial_outage"),
        ("api", "operational"),
        ("checkout", "major_outage"),
        ("billing", "operational"),  # resolved
        ("login", "degraded_performance"),  # mitigated: degraded, as the Statuspage channel sets it
    ]
    assert view.status == "major_outage"
    assert view.headline == "Major outage"
    assert next(i for i in view.incidents if i.component == "login").impact == "major_outage"


def test_nothing_open_is_all_operational() -> None:
    view = build_view(
        [incident(status="resolved", resolved=timedelta(hours=2))], now=NOW, public=listing("api", "checkout")
    )
    assert view.status == "operational"
    assert view.headline == "All systems operational"
    assert {c.status for c in view.components} == {"operational"}
    assert view.incidents == []
    assert build_view([], now=NOW).components == []


def test_history_is_the_window_newest_resolution_first() -> None:
    incidents = [
        incident("yesterday", status="resolved", started=timedelta(days=1, hours=2), resolved=timedelta(days=1)),
        incident("hour-ago", status="resolved", started=timedelta(hours=3), resolved=timedelta(hours=1)),
        incident("days-13", status="resolved", started=timedelta(days=13, hours=1), resolved=timedelta(days=13)),
        incident("days-15", status="resolved", started=timedelta(days=15, hours=1), resolved=timedelta(days=15)),
        incident("open", status="acknowledged"),
    ]
    public = listing("yesterday", "hour-ago", "days-13", "days-15", "open")
    view = build_view(incidents, now=NOW, public=public)
    assert [i.component for i in view.history] == ["hour-ago", "yesterday", "days-13"]
    assert view.history[0].duration_seconds == 2 * 3600
    assert view.history[0].resolved_at == NOW - timedelta(hours=1)
    assert view.history_days == 14
    short = build_view(incidents, now=NOW, history_days=2, public=public)
    assert [i.component for i in short.history] == ["hour-ago", "yesterday"]
    assert [i.component for i in short.incidents] == ["open"]


def test_last_updated_counts_status_and_severity_changes_only() -> None:
    summary = summarize(secret_state())
    assert summary.started_at == NOW - timedelta(minutes=30)
    # The severity change (10 min ago) counts; the later note and delivery are not public updates.
    assert summary.updated_at == NOW - timedelta(minutes=10)
    resolved = summarize(secret_state(status="resolved", resolved_at=NOW - timedelta(minutes=1)))
    assert resolved.resolved_at == resolved.updated_at == NOW - timedelta(minutes=1)


def test_nothing_internal_reaches_the_page() -> None:
    states = [
        secret_state(),
        secret_state(
            key="payments-db-prod-7-old",
            status="resolved",
            opened_at=NOW - timedelta(days=2),
            resolved_at=NOW - timedelta(days=1),
            resolved_by="bob",
            resolution_summary="rolled back payments-api",
        ),
    ]
    view = build_view(states, now=NOW, public=listing("payments"))
    document = view.model_dump_json()
    html = page().html(view)
    for secret in SECRETS:
        assert secret not in document, secret
        assert secret not in html, secret
    # What is there is exactly the public fields.
    fields = {"title", "component", "status", "impact", "started_at", "updated_at", "resolved_at", "duration_seconds"}
    for item in json.loads(document)["incidents"] + json.loads(document)["history"]:
        assert set(item) == fields
    assert "Major outage on payments" in html and "Identified" in html


def test_the_page_is_self_contained() -> None:
    html = page().html(build_view([incident(severity="sev1")], now=NOW, public=listing("checkout")))
    assert '<meta http-equiv="refresh" content="60">' in html
    assert "<style>" in html and "<script" not in html
    assert "<link" not in html and "src=" not in html and "http://" not in html and "https://" not in html
    assert "Major outage on checkout" in html and "Investigating" in html


def test_durations_for_readers() -> None:
    assert took(30) == "under a minute"
    assert took(12 * 60 + 5) == "12 min"
    assert took(3600 + 5 * 60) == "1 h 5 min"
    assert took(2 * 86400 + 3 * 3600 + 59) == "2 d 3 h"


# --- configuration --------------------------------------------------------------------------------------


def test_components_come_from_the_policy_else_the_environment(default_policy: Policy) -> None:
    assert load_status_config({}, default_policy).public.components == ["checkout", "billing", "search"]
    section = StatusPagePolicy(components=["checkout", "search", "checkout"], titles={"sev1": "{component} down"})
    policy = default_policy.model_copy(update={"status_page": section})
    config = load_status_config({}, policy)
    assert config.public.components == ["checkout", "search"]
    assert config.public.title("sev1", "search") == "search down"
    env = {"TOCSIN_STATUS_COMPONENTS": " api, checkout ,,api", "TOCSIN_STATUS_HISTORY_DAYS": "30"}
    config = load_status_config(env, policy)
    assert config.public.components == ["api", "checkout"]
    assert config.public.title("sev1", "api") == "api down", "the environment replaces the list, not the titles"
    assert config.history_days == 30
    assert load_status_config({}).history_days == 14
    # A response workflow's `match: {service: [...]}` no longer publishes anything: only the list does.
    flows = dict(default_policy.automated_response_workflows)
    first = next(iter(flows))
    flows[first] = flows[first].model_copy(update={"match": {"service": ["orders"]}})
    unlisted = default_policy.model_copy(update={"automated_response_workflows": flows, "status_page": listing()})
    assert load_status_config({}, unlisted).public.components == []
    for bad in ("0", "-3", "two", "91"):
        with pytest.raises(ReceiverConfigError, match="TOCSIN_STATUS_HISTORY_DAYS"):
            load_status_config({"TOCSIN_STATUS_HISTORY_DAYS": bad})
    with pytest.raises(ReceiverConfigError, match="TOCSIN_STATUS_COMPONENTS"):
        load_status_config({"TOCSIN_STATUS_COMPONENTS": "checkout,storm"})


def test_the_switch_from_the_policy_and_the_environment(default_policy: Policy) -> None:
    assert load_status_config({}, default_policy).public.enabled
    off = default_policy.model_copy(update={"status_page": StatusPagePolicy(enabled=False, components=["checkout"])})
    assert not load_status_config({}, off).public.enabled
    assert load_status_config({"TOCSIN_STATUS_PAGE": "on"}, off).public.enabled
    assert not load_status_config({"TOCSIN_STATUS_PAGE": "OFF"}, default_policy).public.enabled
    with pytest.raises(ReceiverConfigError, match="TOCSIN_STATUS_PAGE must be on or off"):
        load_status_config({"TOCSIN_STATUS_PAGE": "no"}, default_policy)


# --- the template -------------------------------------------------------------------------------------------


def test_the_template_is_never_taken_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "status_page.html.j2").write_text("planted {{ view.headline }}")
    monkeypatch.chdir(tmp_path)
    assert template_dir() == ROOT / "tocsin" / "templates"  # the package's own (a link to templates/ here)
    assert (ROOT / "tocsin" / "templates").resolve() == ROOT / "templates"
    html = page().html(build_view([], now=NOW))
    assert "planted" not in html and "<h1>System status</h1>" in html


def test_an_override_in_tocsin_home_replaces_the_built_in_page(tmp_path: Path) -> None:
    override = tmp_path / "home" / "templates" / "status_page.html.j2"
    override.parent.mkdir(parents=True)
    override.write_text("custom {{ view.headline }}")
    status = page(home=tmp_path / "home")
    assert status.html(build_view([], now=NOW)) == "custom No components are listed on this page"
    assert "<h1>System status</h1>" in page(home=tmp_path / "elsewhere").html(build_view([], now=NOW))


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ view.__class__.__init__.__globals__ }}",
        "{{ labels.clear() }}",  # the immutable sandbox: no mutating calls either
    ],
)
def test_the_template_renders_in_the_sandbox(tmp_path: Path, template: str) -> None:
    override = tmp_path / "templates" / "status_page.html.j2"
    override.parent.mkdir(parents=True)
    override.write_text(template)
    with pytest.raises(SecurityError):
        page(home=tmp_path).html(build_view([], now=NOW))


async def test_a_template_the_sandbox_refuses_is_a_plain_500(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    override = tmp_path / "templates" / "status_page.html.j2"
    override.parent.mkdir(parents=True)
    override.write_text("{{ ''.__class__.__mro__ }}")
    async with client_for(page(home=tmp_path)) as http:
        html = await http.get("/status")
        document = await http.get("/status.json")
    assert html.status_code == 500 and "unavailable" in html.text
    assert "mro" not in html.text and "Traceback" not in html.text
    assert document.status_code == 200, "the JSON does not go through the template"
    assert "the template failed to render" in caplog.text


# --- cache and routes, with a fake source ---------------------------------------------------------------


class Source:
    def __init__(self, incidents: list[IncidentSummary]) -> None:
        self.incidents = incidents
        self.calls: list[datetime] = []
        self.error: Exception | None = None

    async def __call__(self, since: datetime) -> list[IncidentSummary]:
        self.calls.append(since)
        await asyncio.sleep(0.01)
        if self.error:
            raise self.error
        return self.incidents


async def test_one_query_per_cache_period_however_many_readers() -> None:
    source = Source([incident("down", severity="sev1")])
    now = [NOW.timestamp()]
    status = StatusPage(source, StatusPageConfig(history_days=7, public=listing("down")), clock=lambda: now[0])
    views = await asyncio.gather(*(status.view() for _ in range(50)))
    assert len(source.calls) == 1
    assert source.calls[0] == NOW - timedelta(days=7)
    assert {v.incidents[0].title for v in views} == {"Major outage on down"}
    now[0] += 9
    await status.view()
    assert len(source.calls) == 1
    now[0] += 2
    source.error = ConnectionError("temporal down")
    with pytest.raises(StatusUnavailable):
        await status.view()
    with pytest.raises(StatusUnavailable):
        await status.view()
    assert len(source.calls) == 2, "a failure is remembered for the period too"
    now[0] += 11
    source.error = None
    assert (await status.view()).incidents[0].component == "down"
    assert len(source.calls) == 3


async def never_called(alerts: list[NormalizedAlert]) -> IngestResult:
    raise AssertionError("no ingest expected")


async def healthy() -> bool:
    return True


def client_for(status: StatusPage, config: ReceiverConfig | None = None) -> httpx.AsyncClient:
    app = create_app(ingest=never_called, healthcheck=healthy, config=config, status_page=status)
    # A loopback name: an open receiver answers no other (tests/unit/test_receiver_host.py).
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8080")


async def test_the_page_is_public_even_when_alert_endpoints_need_credentials() -> None:
    source = Source([incident(severity="sev1", status="acknowledged"), incident("vault-int", severity="sev1")])
    status = page(source, public=listing("checkout", "search"))
    async with client_for(status, ReceiverConfig(token=SecretStr("t" * 32))) as http:
        refused = await http.post("/api/v1/alerts", json={"labels": {"alertname": "x"}})
        html = await http.get("/status")
        document = await http.get("/status.json")
    assert refused.status_code == 401
    assert html.status_code == 200
    assert html.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in html.headers["content-security-policy"]
    assert "Major outage on checkout" in html.text and "vault-int" not in html.text
    assert document.status_code == 200
    body = document.json()
    assert body["status"] == "major_outage"
    assert [(i["title"], i["status"]) for i in body["incidents"]] == [("Major outage on checkout", "identified")]
    assert [c["name"] for c in body["components"]] == ["checkout", "search"]
    assert "vault-int" not in document.text
    assert document.headers["cache-control"] == "public, max-age=10"


async def test_temporal_unreachable_is_a_short_503_never_a_traceback() -> None:
    source = Source([])
    source.error = RuntimeError("Failed client connect: Server connection error: tonic::transport::Error(...)")
    async with client_for(page(source)) as http:
        html = await http.get("/status")
        document = await http.get("/status.json")
    assert html.status_code == 503
    assert "unavailable" in html.text and "tonic" not in html.text and "Traceback" not in html.text
    assert html.headers["retry-after"] == "10"
    assert document.status_code == 503
    assert document.json() == {"reason": "temporal_unavailable", "message": "incident data is unavailable right now"}


async def test_without_a_status_page_there_is_no_route() -> None:
    app = create_app(ingest=never_called, healthcheck=healthy)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost") as http:
        assert (await http.get("/status")).status_code == 404


async def test_switched_off_the_page_answers_404(default_policy: Policy, monkeypatch: pytest.MonkeyPatch) -> None:
    client = await Client.connect("127.0.0.1:1", lazy=True)  # never called: the page is not even made
    off = default_policy.model_copy(update={"status_page": StatusPagePolicy(enabled=False, components=["checkout"])})
    assert temporal_status_page(client, off, {}) is None
    assert temporal_status_page(client, default_policy, {"TOCSIN_STATUS_PAGE": "off"}) is None
    assert temporal_status_page(client, default_policy, {}) is not None
    monkeypatch.delenv("TOCSIN_STATUS_PAGE", raising=False)
    secured = ReceiverConfig(token=SecretStr("t" * 32))
    for policy, env in ((off, None), (default_policy, "off")):
        if env:
            monkeypatch.setenv("TOCSIN_STATUS_PAGE", env)
        app = temporal_app(client, policy, secured)  # the real wiring, as `tocsin up` makes it
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://receiver") as http:
            for path in ("/status", "/status.json"):
                assert (await http.get(path)).status_code == 404, path
            assert "/status" not in (await http.get("/openapi.json")).json()["paths"]


async def test_status_page_when_temporal_is_gone() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = await Client.connect(f"127.0.0.1:{port}", lazy=True)
    known: dict[str, IncidentSummary] = {}

    async def fetch(since: datetime) -> list[IncidentSummary]:
        return await fetch_incidents(client, since, known)

    async with client_for(StatusPage(fetch, StatusPageConfig(timeout=3.0))) as http:
        html = await http.get("/status")
        document = await http.get("/status.json")
    assert html.status_code == 503 and "<title>Status unavailable</title>" in html.text
    assert document.status_code == 503 and document.json()["reason"] == "temporal_unavailable"
