"""Post-mortem evidence sources, part two: GitHub (PyGithub against a loopback server answering in GitHub's
REST shapes) and PagerDuty's log entries, and the gather activities run as Temporal activities.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import ActivityEnvironment

from activities.postmortem_gather import GatherActivities
from tests.support.postmortem_fakes import FakeChanges, iso
from tests.support.vendor_fakes import closed_port
from tests.support.vendor_server import Recorded, Reply, VendorServer
from tests.unit.test_postmortem_sources import KEY, OPENED, assert_artifact, gather_request, incident_request
from tocsin.incident.contracts import TimelineEntry
from tocsin.postmortem.artifacts import ArtifactStore
from tocsin.postmortem.contracts import EVIDENCE_LIMIT
from tocsin.postmortem.sources.changes import gather_changes
from tocsin.postmortem.sources.pagerduty import belongs, gather_pagerduty

TOKEN = "ghp_testtoken4d9a2c81"
PD_TOKEN = "pd-api-token-77aa"
REPO = "acme/checkout"


def at(hours: float) -> datetime:
    """A time relative to the opening (14:00Z)."""
    return OPENED + timedelta(hours=hours)


@pytest.fixture
def server() -> Iterator[VendorServer]:
    with VendorServer() as running:
        yield running


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "artifacts")


# --- GitHub ---------------------------------------------------------------------------------------------


def github_env(server: VendorServer, **extra: str) -> dict[str, str]:
    return {"TOCSIN_GITHUB_REPO": REPO, "GITHUB_TOKEN": TOKEN, "TOCSIN_GITHUB_API_URL": server.url, **extra}


async def test_changes_ok(server: VendorServer, store: ArtifactStore) -> None:
    fake = FakeChanges(server)
    # Window: 08:00Z (6 h before the opening) to 14:15Z (15 min after it). Newest first, as GitHub lists them.
    fake.deployment(13, at(0.5), ("success", at(0.52)))  # created after the window
    fake.deployment(14, at(5 / 60), ("in_progress", at(6 / 60)), sha="0123456789")  # still rolling out
    fake.deployment(12, at(-22 / 60), ("success", at(-20 / 60)), ("in_progress", at(-21 / 60)))
    fake.deployment(11, at(-2), ("failure", at(-2 + 5 / 60)), sha="fed9876aaa")
    fake.deployment(10, at(-10))  # long before: the scan stops here, its statuses are never read
    fake.deployment(9, at(-11))
    fake.pull(130, "Late fix", at(0.4), at(0.35), merger="dave")  # merged after the window
    fake.pull(123, "Bump pool size", at(-19 / 60), at(-20 / 60), merger="alice")
    fake.pull(122, "Abandoned idea", at(-1), None)
    fake.pull(99, "Old", at(-7), at(-7))  # updated before the window: paging stops on this page
    fake.pull(98, "Older", at(-8), at(-8))
    fake.pull(97, "Oldest", at(-9), at(-9))
    fake.commit("merge0123" + "0" * 31, "Merge pull request #123", at(-20 / 60), "alice")
    fake.commit("c1c1c1c1" + "0" * 32, "Raise timeout to 5s\n\nThe long explanation.", at(-40 / 60), "bob")
    fake.commit("c2c2c2c2" + "0" * 32, "nightly: bump deps", at(-5), None, name="CI Bot")

    result = await gather_changes(gather_request(), store, github_env(server))

    assert (result.status, result.reason) == ("ok", "")
    assert [(e.id, e.summary) for e in result.evidence] == [
        ("changes-1", "Commit c2c2c2c 'nightly: bump deps' by CI Bot at 09:00Z"),
        ("changes-2", "Deployment 11 of main@fed9876 to production by alice: failure at 12:05Z (created 12:00Z)"),
        ("changes-3", "Commit c1c1c1c 'Raise timeout to 5s' by bob at 13:20Z"),
        ("changes-4", "Deployment 12 of main@abc1234 to production by alice: success at 13:40Z (created 13:38Z)"),
        ("changes-5", "PR #123 'Bump pool size' merged by alice at 13:40Z"),
        (
            "changes-6",
            "Deployment 14 of main@0123456 to production by alice: created at 14:05Z, last status in_progress",
        ),
    ]
    assert result.evidence[4].link == f"https://github.com/{REPO}/pull/123"
    assert result.evidence[4].at == at(-20 / 60)

    paths = server.calls()
    assert "GET /repos/acme/checkout/deployments/10/statuses" not in paths
    assert "GET /repos/acme/checkout/deployments/13/statuses" not in paths
    assert "GET /repos/acme/checkout/pulls/123" in paths and "GET /repos/acme/checkout/pulls/130" not in paths
    pages = [r.query.get("page", ["1"])[0] for r in server.received("GET", "/repos/acme/checkout/pulls")]
    assert pages == ["1", "2"]  # page 3 (#97) never asked for
    [listed] = server.received("GET", "/repos/acme/checkout/pulls")[:1]
    assert {k: v[0] for k, v in listed.query.items()} == {
        "state": "closed",
        "sort": "updated",
        "direction": "desc",
        "per_page": "100",
    }
    [commits] = server.received("GET", "/repos/acme/checkout/commits")
    assert commits.query["since"] == ["2026-03-14T08:00:00Z"] and commits.query["until"] == ["2026-03-14T14:15:00Z"]
    assert all(TOKEN in r.headers["authorization"] for r in server.requests)
    assert server.unmatched == []

    raw = assert_artifact(store, result, f"{KEY}/changes.json")
    assert [d["id"] for d in raw["deployments"]] == [14, 12, 11]
    assert raw["pull_requests"][0]["merged_by"] == "alice"
    assert [c["sha"][:4] for c in raw["commits"]] == ["c1c1", "c2c2"]  # the merge commit is the PR's evidence
    assert raw["commits"][0]["message"] == "Raise timeout to 5s\n\nThe long explanation."
    assert TOKEN not in json.dumps(raw)


async def test_changes_not_configured(store: ArtifactStore) -> None:
    none = await gather_changes(gather_request(), store, {"GITHUB_TOKEN": TOKEN})
    assert none.status == "skipped" and "TOCSIN_GITHUB_REPO" in none.reason
    no_token = await gather_changes(gather_request(), store, {"TOCSIN_GITHUB_REPO": REPO})
    assert no_token.status == "skipped" and "GITHUB_TOKEN" in no_token.reason
    bad = await gather_changes(gather_request(), store, {"TOCSIN_GITHUB_REPO": "checkout", "GITHUB_TOKEN": TOKEN})
    assert (bad.status, bad.reason) == ("failed", "TOCSIN_GITHUB_REPO: must be owner/name")


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (401, "GitHub answered 401 (bad credentials)"),
        (404, f"GitHub answered 404 (no repository {REPO}, or the token cannot see it)"),
        (500, "GitHub answered 500: Server Error"),
    ],
)
async def test_changes_github_refuses(server: VendorServer, store: ArtifactStore, status: int, reason: str) -> None:
    message = {401: "Bad credentials", 404: "Not Found", 500: "Server Error"}[status]
    server.on("GET", "/repos/{owner}/{repo}", Reply(status, json={"message": message}))
    result = await gather_changes(gather_request(), store, github_env(server))
    assert (result.status, result.reason) == ("failed", reason)
    assert result.artifact is None and TOKEN not in result.reason


async def test_changes_github_unreachable(store: ArtifactStore) -> None:
    port = closed_port()
    env = {"TOCSIN_GITHUB_REPO": REPO, "GITHUB_TOKEN": TOKEN, "TOCSIN_GITHUB_API_URL": f"http://127.0.0.1:{port}"}
    result = await gather_changes(gather_request(), store, env)
    assert result.status == "failed" and result.reason.startswith(f"GitHub at 127.0.0.1:{port} unreachable")


async def test_changes_evidence_is_bounded_most_recent_kept(server: VendorServer, store: ArtifactStore) -> None:
    fake = FakeChanges(server)
    for i in range(250):  # newest first, one a minute back from 14:10Z
        fake.commit(f"{i:08x}" + "0" * 32, f"change {i}", at(10 / 60) - timedelta(minutes=i), "bob")
    result = await gather_changes(gather_request(), store, github_env(server))
    assert len(result.evidence) == EVIDENCE_LIMIT
    assert result.evidence[-1].summary == "Commit 0000000 'change 0' by bob at 14:10Z"
    assert result.evidence[0].summary == "Commit 000000c 'change 199' by bob at 10:51Z"  # 200 most recent
    assert result.reason == f"250 changes, {EVIDENCE_LIMIT} kept as evidence (the rest are in the artifact)"
    assert len(assert_artifact(store, result, f"{KEY}/changes.json")["commits"]) == 250


# --- PagerDuty ------------------------------------------------------------------------------------------


def entry(id_: str, type_: str, minute: int, incident: str, key: str | None, **fields: Any) -> dict[str, Any]:
    return {
        "id": id_,
        "type": type_,
        "created_at": iso(OPENED + timedelta(minutes=minute)),
        "html_url": f"https://acme.pagerduty.com/incidents/{incident}/log_entries/{id_}",
        "incident": {"id": incident, "type": "incident", "incident_number": 1234, "incident_key": key},
        **fields,
    }


ENTRIES = [
    entry("R1", "trigger_log_entry", 0, "PABC", KEY, channel={"type": "api"}, summary="Triggered through the API."),
    entry("R2", "trigger_log_entry", 1, "POTHER", "billing-queue-1", channel={"type": "api"}),
    entry("R3", "notify_log_entry", 1, "PABC", KEY, user={"summary": "Alice"}, channel={"type": "sms"}),
    entry("R4", "acknowledge_log_entry", 4, "PABC", KEY, agent={"summary": "Alice"}),
    entry("R5", "escalate_log_entry", 9, "PABC", KEY, summary="Escalated to level 2 by Alice"),
    entry("R6", "resolve_log_entry", 40, "PABC", KEY, agent={"summary": "Bob"}),
]


def pagerduty(server: VendorServer, entries: list[dict[str, Any]], page: int = 3) -> None:
    def answer(request: Recorded) -> Reply:
        offset, limit = int(request.query["offset"][0]), int(request.query["limit"][0])
        chunk = entries[offset : offset + min(limit, page)]  # this fake pages by 3, whatever is asked
        more = offset + len(chunk) < len(entries)
        return Reply(json={"log_entries": chunk, "limit": limit, "offset": offset, "more": more, "total": None})

    server.on("GET", "/log_entries", answer)


async def test_pagerduty_ok(server: VendorServer, store: ArtifactStore) -> None:
    pagerduty(server, ENTRIES, page=100)
    env = {"TOCSIN_PAGERDUTY_API_TOKEN": PD_TOKEN, "TOCSIN_PAGERDUTY_API_URL": server.url}
    result = await gather_pagerduty(gather_request(), store, env)
    assert (result.status, result.reason) == ("ok", "")
    assert [(e.id, e.summary) for e in result.evidence] == [
        ("pagerduty-1", "PagerDuty incident #1234 triggered via api"),
        ("pagerduty-2", "PagerDuty incident #1234 notified Alice by sms"),
        ("pagerduty-3", "PagerDuty incident #1234 acknowledged by Alice"),
        ("pagerduty-4", "PagerDuty incident #1234 escalated (Escalated to level 2 by Alice)"),
        ("pagerduty-5", "PagerDuty incident #1234 resolved by Bob"),
    ]
    assert result.evidence[2].at == OPENED + timedelta(minutes=4)
    [request] = server.requests
    assert request.headers["authorization"] == f"Token token={PD_TOKEN}"
    assert request.headers["accept"] == "application/vnd.pagerduty+json;version=2"
    start, end = gather_request().window
    assert request.query["since"] == [start.isoformat()] and request.query["until"] == [end.isoformat()]
    assert request.query["is_overview"] == ["true"] and request.query["include[]"] == ["incidents"]
    raw = assert_artifact(store, result, f"{KEY}/pagerduty.json")
    assert raw["entries_in_window"] == 6 and [e["id"] for e in raw["log_entries"]] == ["R1", "R3", "R4", "R5", "R6"]


async def test_pagerduty_pages_until_no_more(server: VendorServer, store: ArtifactStore) -> None:
    pagerduty(server, ENTRIES, page=4)  # fewer than asked for, with more=true: the next offset is what came
    env = {"TOCSIN_PAGERDUTY_API_TOKEN": PD_TOKEN, "TOCSIN_PAGERDUTY_API_URL": server.url}
    result = await gather_pagerduty(gather_request(), store, env)
    assert [r.query["offset"] for r in server.requests] == [["0"], ["4"]]
    assert [r.query["limit"] for r in server.requests] == [["100"], ["100"]]
    assert [e.summary.split(" ", 3)[3] for e in result.evidence] == [
        "triggered via api",
        "notified Alice by sms",
        "acknowledged by Alice",
        "escalated (Escalated to level 2 by Alice)",
        "resolved by Bob",
    ]


def test_pagerduty_matches_on_the_trigger_channel_key_too() -> None:
    # Without the expanded incident (no incident_key), the trigger's channel carries the dedup key.
    bare: list[dict[str, Any]] = [
        {"id": "A", "type": "trigger_log_entry", "incident": {"id": "P1"}, "channel": {"incident_key": KEY}},
        {"id": "B", "type": "acknowledge_log_entry", "incident": {"id": "P1"}},
        {"id": "C", "type": "acknowledge_log_entry", "incident": {"id": "P2"}},
        {"id": "D", "type": "acknowledge_log_entry"},
    ]
    assert [e["id"] for e in belongs(bare, KEY)] == ["A", "B"]


async def test_pagerduty_not_configured_refused_and_unmatched(server: VendorServer, store: ArtifactStore) -> None:
    skipped = await gather_pagerduty(gather_request(), store, {"TOCSIN_PAGERDUTY_ROUTING_KEY": "x" * 32})
    assert skipped.status == "skipped" and "TOCSIN_PAGERDUTY_API_TOKEN" in skipped.reason
    env = {"TOCSIN_PAGERDUTY_API_TOKEN": PD_TOKEN, "TOCSIN_PAGERDUTY_API_URL": server.url}
    server.on("GET", "/log_entries", Reply(401, json={"error": {"message": "Unauthorized", "code": 2006}}))
    refused = await gather_pagerduty(gather_request(), store, env)
    assert (refused.status, refused.reason) == (
        "failed",
        f"PagerDuty at 127.0.0.1:{server.port} answered 401 (bad API token)",
    )
    server.on("GET", "/log_entries", Reply(400, json={"error": {"message": "Invalid Input", "errors": ["since"]}}))
    invalid = await gather_pagerduty(gather_request(), store, env)
    assert invalid.reason == f"PagerDuty at 127.0.0.1:{server.port} answered 400: Invalid Input (since)"
    pagerduty(server, [e for e in ENTRIES if e["incident"]["id"] == "POTHER"])
    unmatched = await gather_pagerduty(gather_request(), store, env)
    assert unmatched.status == "ok" and unmatched.evidence == []
    assert unmatched.reason == f"none of the 1 log entries in the window is about incident key {KEY}"


# --- as Temporal activities -----------------------------------------------------------------------------


async def test_activities_complete_when_nothing_is_configured(store: ArtifactStore) -> None:
    activities = GatherActivities(store, {})
    env = ActivityEnvironment()
    results = [
        await env.run(activities.metrics, gather_request()),
        await env.run(activities.logs, gather_request()),
        await env.run(activities.changes, gather_request()),
        await env.run(activities.pagerduty, gather_request()),
    ]
    assert [(r.source, r.status) for r in results] == [
        ("metrics", "skipped"),
        ("logs", "skipped"),
        ("changes", "skipped"),
        ("pagerduty", "skipped"),
    ]
    assert [r.reason.split()[0] for r in results] == [
        "TOCSIN_PROMETHEUS_URL",
        "TOCSIN_LOKI_URL",
        "TOCSIN_GITHUB_REPO",
        "TOCSIN_PAGERDUTY_API_TOKEN",
    ]
    timeline = [TimelineEntry(at=OPENED, kind="opened", text="checkout down")]
    incident = await env.run(activities.incident, incident_request(timeline))
    assert incident.status == "ok" and [e.id for e in incident.evidence] == ["incident-1"]
    assert_artifact(store, incident, f"{KEY}/incident.json")


async def test_activity_reports_a_failing_source_without_raising(store: ArtifactStore) -> None:
    activities = GatherActivities(store, {"TOCSIN_LOKI_URL": f"http://127.0.0.1:{closed_port()}"}, request_timeout=2)
    result = await ActivityEnvironment().run(activities.logs, gather_request())
    assert result.status == "failed" and "unreachable" in result.reason
