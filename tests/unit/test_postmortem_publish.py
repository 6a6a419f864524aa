"""Publishing a post-mortem to GitHub and following its action items, against a real loopback HTTP server that
plays GitHub's REST API (tests/support/vendor_server.py) for PyGithub: repositories, issues, and the contents API
(`GET/PUT /repos/{owner}/{repo}/contents/{path}`, base64 content and git blob shas, statefully).
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.postmortem_report import ReportActivities
from tests.support.postmortem_fakes import FakeGitHubRepo
from tests.support.vendor_server import Reply, VendorServer
from tests.unit.test_postmortem_report import report_request
from tocsin.channels import github as github_module
from tocsin.channels.github import GitHubIssues
from tocsin.postmortem.artifacts import ArtifactStore
from tocsin.postmortem.contracts import (
    ActionItem,
    Draft,
    FollowUpRequest,
    ItemState,
    Publication,
    PublishedItem,
    PublishRequest,
    ReportRequest,
)
from tocsin.postmortem.publish import git_blob_sha, item_marker

TOKEN = "ghp_postmortemtoken7f3a91"
REPO = "acme/ops"
KEY = "serviceavailabilitylow-checkout-prod-311b734629"
PATH = f"postmortems/{KEY}.md"
CONTENTS = f"/repos/{REPO}/contents/{PATH}"


@pytest.fixture
def server() -> Iterator[VendorServer]:
    with VendorServer() as running:
        yield running


@pytest.fixture
def fake(server: VendorServer) -> FakeGitHubRepo:
    return FakeGitHubRepo(server)


def activities(tmp_path: Path, server: VendorServer | None) -> ReportActivities:
    github = GitHubIssues(TOKEN, REPO, server.url, pace=False) if server else None
    return ReportActivities(
        ArtifactStore(tmp_path / "artifacts"), tmp_path / "postmortems", tmp_path, env={}, github=github
    )


async def draft_of(acts: ReportActivities, request: ReportRequest) -> Draft:
    draft: Draft = await ActivityEnvironment().run(acts.render, request)
    return draft


async def publish(acts: ReportActivities, draft: Draft, items: list[ActionItem]) -> Publication:
    request = PublishRequest(key=draft.key, draft=draft, action_items=items, idempotency_key=f"p/{draft.revision}")
    publication: Publication = await ActivityEnvironment().run(acts.publish, request)
    return publication


async def test_publishing_twice_commits_once_and_files_one_issue_per_item(
    tmp_path: Path, server: VendorServer, fake: FakeGitHubRepo
) -> None:
    acts = activities(tmp_path, server)
    request = report_request()
    draft = await draft_of(acts, request)
    markdown = acts.store.read_text(draft.markdown)

    first = await publish(acts, draft, request.action_items)

    assert server.calls() == [
        f"GET {CONTENTS}",
        f"PUT {CONTENTS}",
        f"GET /repos/{REPO}/issues",
        f"POST /repos/{REPO}/issues",
        f"POST /repos/{REPO}/issues",
    ]
    put = server.received("PUT")[0]
    assert "sha" not in put.json and put.json["message"] == f"Post-mortem of {KEY}, revision 2"
    assert base64.b64decode(put.json["content"]).decode() == markdown
    assert fake.files[f"{REPO}/{PATH}"] == markdown.encode()
    assert server.received("GET", f"/repos/{REPO}/issues")[0].query["labels"] == ["postmortem"]
    assert server.received("GET", f"/repos/{REPO}/issues")[0].query["state"] == ["all"]
    for recorded in server.requests:
        assert recorded.headers["authorization"] == f"token {TOKEN}"

    canary, sms = (r.json for r in server.received("POST"))
    assert canary["title"] == "Add a canary stage to checkout deploys"
    assert canary["labels"] == ["postmortem", "action-item", "priority:P1"]
    assert sms["labels"] == ["postmortem", "action-item", "priority:P2"]
    report_url = f"https://github.com/{REPO}/blob/main/{PATH}"
    assert canary["body"].startswith(f"Action item from [the post-mortem of {KEY}]({report_url}).\n\n")
    assert "Route 5% of traffic to the new version for 10 minutes." in canary["body"]
    assert "| Owner | sre |" in canary["body"] and "| Due | 2026-03-08 |" in canary["body"]
    assert "| Evidence | changes-1 |" in canary["body"]
    digest = hashlib.sha256(b"add a canary stage to checkout deploys").hexdigest()[:16]
    assert canary["body"].rstrip().endswith(f"<!-- tocsin:postmortem:{KEY}:item:{digest} -->")
    assert item_marker(KEY, "  Add a CANARY stage to checkout   deploys") == item_marker(KEY, canary["title"])

    assert first == Publication(
        report_url=report_url,
        items=[
            PublishedItem(
                title="Add a canary stage to checkout deploys",
                owner="sre",
                due=date(2026, 3, 8),
                issue_number=1,
                issue_url=f"https://github.com/{REPO}/issues/1",
            ),
            PublishedItem(
                title="Fix the SMS sender number",
                owner="platform",
                due=date(2026, 3, 31),
                issue_number=2,
                issue_url=f"https://github.com/{REPO}/issues/2",
            ),
        ],
    )

    # A retried publish (the first one's answer was lost): the same file is seen identical, the markers found.
    server.reset()
    again = await publish(acts, draft, request.action_items)
    assert server.calls() == [f"GET {CONTENTS}", f"GET /repos/{REPO}/issues"]
    assert again.report_url == first.report_url and again.items == first.items
    assert again.notes == [f"{PATH} is already up to date in {REPO}: not committed again"]
    assert len(fake.commits) == 1 and len(fake.issues[REPO]) == 2
    assert server.unmatched == []


async def test_a_changed_report_updates_the_file_with_its_previous_sha(
    tmp_path: Path, server: VendorServer, fake: FakeGitHubRepo
) -> None:
    acts = activities(tmp_path, server)
    request = report_request()
    first = await draft_of(acts, request)
    await publish(acts, first, request.action_items)
    previous_sha = FakeGitHubRepo.blob_sha(fake.files[f"{REPO}/{PATH}"])

    revised = await draft_of(acts, request.model_copy(update={"revision": 3, "approved_by": "carol"}))
    server.reset()
    publication = await publish(acts, revised, request.action_items)

    assert server.calls() == [f"GET {CONTENTS}", f"PUT {CONTENTS}", f"GET /repos/{REPO}/issues"]
    put = server.received("PUT")[0].json
    assert put["sha"] == previous_sha and put["message"] == f"Post-mortem of {KEY}, revision 3"
    assert "| Status | approved by carol |" in fake.files[f"{REPO}/{PATH}"].decode()
    assert len(fake.commits) == 2 and len(fake.issues[REPO]) == 2  # no second issue for the same items
    assert [i.issue_number for i in publication.items] == [1, 2] and publication.notes == []


async def test_an_issue_left_by_an_earlier_attempt_is_not_filed_again(
    tmp_path: Path, server: VendorServer, fake: FakeGitHubRepo
) -> None:
    """An attempt that filed the first item's issue (since closed) and died: the retry files only the second."""
    acts = activities(tmp_path, server)
    request = report_request()
    canary = request.action_items[0]
    fake.add(
        REPO,
        {"title": canary.title, "body": f"x\n{item_marker(KEY, canary.title)}\n", "labels": ["postmortem"]},
        state="closed",
    )
    for n in range(3):
        fake.add(REPO, {"title": f"other {n}", "body": "no marker", "labels": ["postmortem"]})
    fake.page_size = 2  # the marker is on the last page

    publication = await publish(acts, await draft_of(acts, request), request.action_items)

    assert [r.json["title"] for r in server.received("POST")] == ["Fix the SMS sender number"]
    assert [(i.title, i.issue_number) for i in publication.items] == [
        ("Add a canary stage to checkout deploys", 1),
        ("Fix the SMS sender number", 5),
    ]


def test_git_blob_sha_is_gits() -> None:
    data = b"# Post-mortem\n| a \\| b |\n"
    assert git_blob_sha(data) == FakeGitHubRepo.blob_sha(data)
    git = shutil.which("git")
    if git:
        out = subprocess.run([git, "hash-object", "--stdin"], input=data, capture_output=True, check=True)
        assert git_blob_sha(data) == out.stdout.decode().strip()


@pytest.mark.parametrize(
    ("route", "reply", "message"),
    [
        (
            ("GET", CONTENTS),
            Reply(401, json={"message": "Bad credentials"}),
            f"publishing {KEY} to {REPO}: reading {PATH}: github answered 401: Bad credentials",
        ),
        (
            ("PUT", CONTENTS),
            Reply(403, json={"message": "Resource not accessible by integration"}),
            f"creating {PATH}: github answered 403: Resource not accessible by integration",
        ),
        (
            ("POST", f"/repos/{REPO}/issues"),
            Reply(410, json={"message": "Issues are disabled for this repo"}),
            "opening the issue for 'Add a canary stage to checkout deploys': github answered 410",
        ),
        (
            ("POST", f"/repos/{REPO}/issues"),
            Reply(422, json={"message": "Validation Failed", "errors": [{"code": "invalid", "field": "labels"}]}),
            "github answered 422: Validation Failed \\(code=invalid field=labels\\)",
        ),
    ],
    ids=["401", "403", "410", "422"],
)
async def test_a_refusal_is_not_retried(
    tmp_path: Path,
    server: VendorServer,
    fake: FakeGitHubRepo,
    route: tuple[str, str],
    reply: Reply,
    message: str,
) -> None:
    acts = activities(tmp_path, server)
    request = report_request()
    draft = await draft_of(acts, request)
    server.on(*route, reply)
    with pytest.raises(ApplicationError, match=message) as caught:
        await publish(acts, draft, request.action_items)
    assert caught.value.type == "PublishRejected" and caught.value.non_retryable
    assert TOKEN not in str(caught.value)


@pytest.mark.parametrize(
    ("reply", "delay"),
    [
        (Reply(502, body="<html>bad gateway</html>"), None),
        (Reply(503, json={"message": "unavailable"}, headers={"Retry-After": "7"}), timedelta(seconds=7)),
        (Reply(429, json={"message": "Too many requests"}, headers={"Retry-After": "12"}), timedelta(seconds=12)),
        (Reply(409, json={"message": "does not match"}), None),
    ],
    ids=["502", "503-retry-after", "429", "409-file-moved"],
)
async def test_an_outage_is_retried_after_githubs_wait(
    tmp_path: Path, server: VendorServer, fake: FakeGitHubRepo, reply: Reply, delay: timedelta | None
) -> None:
    acts = activities(tmp_path, server)
    request = report_request()
    draft = await draft_of(acts, request)
    server.on("PUT", CONTENTS, reply)
    with pytest.raises(ApplicationError, match=f"creating {PATH}: github answered {reply.status}") as caught:
        await publish(acts, draft, request.action_items)
    assert caught.value.type == "PublishUnavailable" and not caught.value.non_retryable
    assert caught.value.next_retry_delay == delay


async def test_a_timeout_is_retried(
    tmp_path: Path, server: VendorServer, fake: FakeGitHubRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(github_module, "TIMEOUT_SECONDS", 1)  # PyGithub takes whole seconds
    acts = activities(tmp_path, server)
    request = report_request()
    draft = await draft_of(acts, request)
    server.on("GET", CONTENTS, Reply(json={}, delay=3))
    with pytest.raises(ApplicationError, match="github timed out after 1s") as caught:
        await publish(acts, draft, request.action_items)
    assert caught.value.type == "PublishUnavailable" and not caught.value.non_retryable


async def test_without_github_the_report_stays_on_disk(tmp_path: Path) -> None:
    acts = activities(tmp_path, None)
    request = report_request()
    publication = await publish(acts, await draft_of(acts, request), request.action_items)
    where = tmp_path / "postmortems" / f"{KEY}.md"
    assert publication == Publication(
        items=[
            PublishedItem(title="Add a canary stage to checkout deploys", owner="sre", due=date(2026, 3, 8)),
            PublishedItem(title="Fix the SMS sender number", owner="platform", due=date(2026, 3, 31)),
        ],
        notes=[f"GitHub not configured (TOCSIN_GITHUB_REPO): the report stays at {where}"],
    )
    assert where.is_file()


async def test_a_half_configured_github_is_a_refusal(tmp_path: Path) -> None:
    acts = ReportActivities(
        ArtifactStore(tmp_path / "artifacts"), tmp_path / "postmortems", tmp_path, env={"TOCSIN_GITHUB_REPO": REPO}
    )
    request = report_request()
    with pytest.raises(ApplicationError, match="TOCSIN_GITHUB_REPO is set but GITHUB_TOKEN is not") as caught:
        await publish(acts, await draft_of(acts, request), request.action_items)
    assert caught.value.type == "PublishRejected" and caught.value.non_retryable


async def test_a_draft_changed_on_disk_is_not_published(tmp_path: Path, server: VendorServer) -> None:
    acts = activities(tmp_path, server)
    request = report_request()
    draft = await draft_of(acts, request)
    acts.store.location(draft.markdown).write_text("tampered")
    with pytest.raises(ApplicationError, match="changed since it was written") as caught:
        await publish(acts, draft, request.action_items)
    assert caught.value.type == "PublishRejected" and caught.value.non_retryable
    assert server.requests == []


# --- follow-through -------------------------------------------------------------------------------------


def follow_up_request(numbers: list[int | None]) -> FollowUpRequest:
    dues = [date(2026, 3, 8), date(2026, 3, 31), date(2026, 3, 8)]
    return FollowUpRequest(
        key=KEY,
        items=[
            PublishedItem(title=f"item {n}", owner="sre", due=due, issue_number=n)
            for n, due in zip(numbers, dues, strict=False)
        ],
        today=date(2026, 3, 10),
    )


async def test_follow_up_reads_each_issue(tmp_path: Path, server: VendorServer, fake: FakeGitHubRepo) -> None:
    for n in range(3):
        fake.add(REPO, {"title": f"item {n + 1}", "body": "", "labels": ["postmortem"]})
    fake.issues[REPO][1]["state"] = "closed"
    request = follow_up_request([1, 2, 3])
    request.items[1] = request.items[1].model_copy(update={"due": date(2026, 3, 1)})  # closed: never overdue

    report = await ActivityEnvironment().run(activities(tmp_path, server).follow_up, request)

    assert report.items == [
        ItemState(issue_number=1, open=True, overdue=True),
        ItemState(issue_number=2, open=False, overdue=False),
        ItemState(issue_number=3, open=True, overdue=True),
    ]
    assert server.calls() == [f"GET /repos/{REPO}/issues/{n}" for n in (1, 2, 3)]


async def test_follow_up_configured_from_the_environment(
    tmp_path: Path, server: VendorServer, fake: FakeGitHubRepo
) -> None:
    fake.add(REPO, {"title": "item 1", "body": "", "labels": ["postmortem"]}, state="closed")
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    env = {"GITHUB_TOKEN_FILE": str(token_file), "TOCSIN_GITHUB_REPO": REPO, "TOCSIN_GITHUB_API_URL": server.url}
    acts = ReportActivities(ArtifactStore(tmp_path / "a"), tmp_path / "postmortems", tmp_path, env=env)
    report = await ActivityEnvironment().run(acts.follow_up, follow_up_request([1, None]))
    # An item without an issue is judged by its date: open, and not overdue before it is due.
    assert report.items == [
        ItemState(issue_number=1, open=False, overdue=False),
        ItemState(issue_number=0, open=True, overdue=False),
    ]
    assert server.received()[0].headers["authorization"] == f"token {TOKEN}"


async def test_follow_up_errors(tmp_path: Path, server: VendorServer) -> None:
    acts = activities(tmp_path, server)
    server.on("GET", f"/repos/{REPO}/issues/{{number}}", Reply(401, json={"message": "Bad credentials"}))
    with pytest.raises(ApplicationError, match="reading issue #1: github answered 401: Bad credentials") as caught:
        await ActivityEnvironment().run(acts.follow_up, follow_up_request([1]))
    assert caught.value.type == "PublishRejected" and caught.value.non_retryable
    server.on("GET", f"/repos/{REPO}/issues/{{number}}", Reply(500, json={"message": "Server Error"}))
    with pytest.raises(ApplicationError, match="github answered 500") as caught:
        await ActivityEnvironment().run(acts.follow_up, follow_up_request([1]))
    assert caught.value.type == "PublishUnavailable" and not caught.value.non_retryable


async def test_follow_up_without_github_goes_by_date(tmp_path: Path) -> None:
    report = await ActivityEnvironment().run(activities(tmp_path, None).follow_up, follow_up_request([None, None]))
    assert report.items == [
        ItemState(issue_number=0, open=True, overdue=True),  # due 2026-03-08, today 2026-03-10
        ItemState(issue_number=0, open=True, overdue=False),  # due 2026-03-31
    ]
