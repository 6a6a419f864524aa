"""Changes evidence: what changed in the service's repository around the incident, from GitHub through PyGithub.

The window is [opened_at - postmortem.changes_before, opened_at + postmortem.window_after]. In it:
- deployments (`GET /repos/{o}/{r}/deployments`, newest first; each one's `statuses`): when it went live
  (its first `success` status), or failed, or was created when it has no status;
- merged pull requests (`GET /repos/{o}/{r}/pulls?state=closed&sort=updated&direction=desc`, paging stops at
  the first one last updated before the window: a pull request merged in the window was updated in it);
  who merged one comes from the pull request itself (`GET .../pulls/{n}`, the list does not carry it), for
  the first MERGED_BY_LOOKUPS of them;
- commits on the default branch (`GET /repos/{o}/{r}/commits?since=..&until=..`), except the merge commits
  of those pull requests.

Configuration as the `github` channel reads it (tocsin/channels/github.py): `TOCSIN_GITHUB_REPO` (owner/name),
`GITHUB_TOKEN` (or `GITHUB_TOKEN_FILE`), `TOCSIN_GITHUB_API_URL` (https://HOST/api/v3 for GitHub Enterprise
Server, or a test server). PyGithub is synchronous: the whole scan runs in one thread, with PyGithub's retries
and its pause between requests off, each request bounded by a timeout and the scan by a total budget.
Titles and commit messages are other people's text: they are quoted, cut short, and never interpreted.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from tocsin.channels.vendor_settings import host_of
from tocsin.postmortem.artifacts import ArtifactStore
from tocsin.postmortem.contracts import EVIDENCE_LIMIT, GatherRequest, SourceResult
from tocsin.postmortem.sources.results import (
    DEFAULT_TIMEOUT,
    Finding,
    SourceFailure,
    artifact_path,
    clip,
    clock,
    failed,
    number,
    read_setting,
    read_url,
    skipped,
    utc,
)

# PyGithub is imported by the scan that uses it, not here: importing it costs ~32 MB of RSS and ~500 modules
# (measured), which every worker paid at start although most installations configure no GitHub (issue #12).
if TYPE_CHECKING:
    from github import GithubException
    from github.Repository import Repository

DEFAULT_API_URL = "https://api.github.com"
SCAN_LIMIT = 300  # items read from each list at most
DEPLOY_GRACE = timedelta(hours=1)  # a deployment created this long before the window may go live in it
MERGED_BY_LOOKUPS = 30
MAX_DEPLOYMENTS = 50  # deployments in the window looked at (each costs a request for its statuses)
BUDGET_SECONDS = 60.0  # the whole scan (then at most one request per list more); past it, what was found is kept
_RANK = {"deployment": 0, "pull_request": 1, "commit": 2}
T = TypeVar("T")


@dataclass
class Change:
    kind: str  # deployment, pull_request, commit
    at: datetime
    summary: str
    link: str
    record: dict[str, Any]


@dataclass
class _Scan:
    repo: Repository
    start: datetime
    end: datetime
    deadline: float
    notes: list[str] = field(default_factory=list)

    def bounded(self, items: Iterable[T], what: str) -> Iterator[T]:
        """At most SCAN_LIMIT items, and none after the budget is spent (each noted once)."""
        for seen, item in enumerate(items):
            if seen >= SCAN_LIMIT:
                self.notes.append(f"{what}: stopped after {SCAN_LIMIT}")
                return
            if time.monotonic() > self.deadline:
                self.notes.append(f"{what}: stopped after {BUDGET_SECONDS:g}s, the list may be incomplete")
                return
            yield item

    def within(self, at: datetime | None) -> bool:
        return at is not None and self.start <= utc(at) <= self.end

    def deployments(self) -> list[Change]:
        found: list[Change] = []
        for deployment in self.bounded(self.repo.get_deployments(), "deployments"):
            created = utc(deployment.created_at)
            if created < self.start - DEPLOY_GRACE:
                break  # newest first: the rest are older still
            if created > self.end:
                continue
            if len(found) >= MAX_DEPLOYMENTS:
                self.notes.append(f"deployments: stopped after {MAX_DEPLOYMENTS} in the window")
                break
            statuses = list(self.bounded(deployment.get_statuses(), "deployment statuses"))  # newest first
            live = [s for s in statuses if s.state == "success"]
            latest = statuses[0] if statuses else None
            if live:  # when it went live: its first success
                at = utc(live[-1].created_at)
                outcome = f"success at {clock(at)} (created {clock(created)})"
            elif latest is not None and latest.state in ("failure", "error"):
                at = utc(latest.created_at)
                outcome = f"{latest.state} at {clock(at)} (created {clock(created)})"
            else:
                at = created
                outcome = f"created at {clock(at)}, " + (f"last status {latest.state}" if latest else "no status")
            if not (self.within(at) or self.within(created)):
                continue
            who = deployment.creator.login if deployment.creator else "?"
            what = f"Deployment {deployment.id} of {clip(deployment.ref, 60)}@{deployment.sha[:7]}"
            text = f"{what} to {clip(deployment.environment, 60)} by {who}: {outcome}"
            record = {
                "id": deployment.id,
                "ref": deployment.ref,
                "sha": deployment.sha,
                "environment": deployment.environment,
                "creator": who,
                "created_at": created.isoformat(),
                "statuses": [{"state": s.state, "created_at": utc(s.created_at).isoformat()} for s in statuses],
            }
            found.append(Change("deployment", at, text, deployment.sha, record))
        return found

    def pull_requests(self) -> list[Change]:
        found: list[Change] = []
        pulls = self.repo.get_pulls(state="closed", sort="updated", direction="desc")
        for pull in self.bounded(pulls, "pull requests"):
            if pull.updated_at is not None and utc(pull.updated_at) < self.start:
                break  # updated before the window: merged before it too, and so is everything after
            merged_at = pull.merged_at
            if merged_at is None or not self.within(merged_at):
                continue
            merged = utc(merged_at)
            author = pull.user.login if pull.user else "?"
            merger = self._merged_by(pull) if len(found) < MERGED_BY_LOOKUPS else None
            who = f"merged by {merger}" if merger else f"by {author}, merged"
            text = f"PR #{pull.number} '{clip(pull.title, 120)}' {who} at {clock(merged)}"
            record = {
                "number": pull.number,
                "title": pull.title,
                "author": author,
                "merged_by": merger,
                "merged_at": merged.isoformat(),
                "merge_commit_sha": pull.merge_commit_sha,
                "url": pull.html_url,
            }
            found.append(Change("pull_request", merged, text, pull.html_url, record))
        return found

    def _merged_by(self, pull: Any) -> str | None:
        """The list does not say who merged; PyGithub asks the pull request itself (one GET). Best effort."""
        from github import GithubException  # loaded already by _scan

        try:
            user = pull.merged_by
        except (GithubException, OSError):
            return None
        return str(user.login) if user is not None else None

    def commits(self, skip: set[str]) -> list[Change]:
        found: list[Change] = []
        for commit in self.bounded(self.repo.get_commits(since=self.start, until=self.end), "commits"):
            if commit.sha in skip:
                continue
            git = commit.commit
            when = git.committer.date if git.committer and git.committer.date else git.author.date
            if when is None:
                continue
            who = commit.author.login if commit.author else (git.author.name if git.author else "?")
            at = utc(when)
            message = (git.message or "").strip().splitlines()
            text = f"Commit {commit.sha[:7]} '{clip(message[0] if message else '', 120)}' by {who} at {clock(at)}"
            record = {"sha": commit.sha, "message": git.message, "author": who, "at": at.isoformat()}
            found.append(Change("commit", at, text, commit.html_url or commit.sha, record))
        return found


def _reason(err: GithubException, repo: str) -> str:
    from github import RateLimitExceededException  # loaded already: err came from a PyGithub call

    meaning = {
        401: "bad credentials",
        403: "forbidden: the token cannot read it, or the rate limit is spent",
        404: f"no repository {repo}, or the token cannot see it",
    }
    if isinstance(err, RateLimitExceededException):
        return f"GitHub answered {err.status} (rate limit exceeded)"
    if err.status in meaning:
        return f"GitHub answered {err.status} ({meaning[err.status]})"
    data = err.data if isinstance(err.data, dict) else {}
    message = clip(str(data.get("message") or err.message or ""), 200)
    return f"GitHub answered {err.status}" + (f": {message}" if message else "")


def _scan(token: str, repo_name: str, api_url: str, start: datetime, end: datetime, wait: float) -> dict[str, Any]:
    """In a thread. The changes found, by kind, and notes; SourceFailure for a GitHub or network failure."""
    from github import Auth, Github, GithubException  # the first scan loads PyGithub (the note on imports at the top)

    github = Github(
        base_url=api_url,
        auth=Auth.Token(token),
        retry=None,
        timeout=max(1, math.ceil(wait)),
        per_page=100,
        seconds_between_requests=None,
        seconds_between_writes=None,
    )
    try:
        with github:
            scan = _Scan(github.get_repo(repo_name), start, end, time.monotonic() + BUDGET_SECONDS)
            deployments = scan.deployments()
            pulls = scan.pull_requests()
            merges = {str(p.record["merge_commit_sha"]) for p in pulls if p.record["merge_commit_sha"]}
            commits = scan.commits(merges)
    except GithubException as err:
        raise SourceFailure(_reason(err, repo_name)) from None
    except OSError as err:  # requests' errors are OSErrors
        where = f"GitHub at {host_of(api_url)}"
        if any(cls.__name__ in ("Timeout", "TimeoutError") for cls in type(err).__mro__):
            raise SourceFailure(f"{where}: no answer within {wait:g}s (timeout)") from None
        raise SourceFailure(f"{where} unreachable ({type(err).__name__})") from None
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise SourceFailure(f"GitHub at {host_of(api_url)}: not a GitHub API answer ({type(err).__name__})") from None
    return {"deployments": deployments, "pull_requests": pulls, "commits": commits, "notes": scan.notes}


async def gather_changes(
    request: GatherRequest,
    store: ArtifactStore,
    env: Mapping[str, str] | None = None,
    *,
    request_timeout: float = DEFAULT_TIMEOUT,
) -> SourceResult:
    """Deployments, merged pull requests and commits in the change window: evidence (deployments first, then
    pull requests, then commits, the most recent of each kept when there are too many) and `<key>/changes.json`."""
    env = os.environ if env is None else env
    repo = (env.get("TOCSIN_GITHUB_REPO") or "").strip()
    if not repo:
        return skipped("changes", "TOCSIN_GITHUB_REPO is not set: no changes gathered")
    owner, sep, name = repo.partition("/")
    if not (sep and owner and name and "/" not in name and " " not in repo):
        return failed("changes", "TOCSIN_GITHUB_REPO: must be owner/name")
    try:
        token = read_setting(env, "GITHUB_TOKEN")
        api_url = read_url(env, "TOCSIN_GITHUB_API_URL", DEFAULT_API_URL)
    except SourceFailure as failure:
        return failed("changes", failure.reason)
    if not token:
        return skipped("changes", "GITHUB_TOKEN is not set (nor GITHUB_TOKEN_FILE): no changes gathered")
    start = utc(request.opened_at - request.settings.changes_before)
    end = utc(request.opened_at + request.settings.window_after)
    try:
        found = await asyncio.to_thread(_scan, token, repo, api_url, start, end, request_timeout)
    except SourceFailure as failure:
        return failed("changes", failure.reason.replace(token, "[redacted]"))
    changes: list[Change] = [*found["deployments"], *found["pull_requests"], *found["commits"]]
    kept = sorted(changes, key=lambda c: (_RANK[c.kind], -c.at.timestamp()))[:EVIDENCE_LIMIT]
    notes: list[str] = list(found["notes"])
    if len(kept) < len(changes):
        notes.append(f"{len(changes)} changes, {len(kept)} kept as evidence (the rest are in the artifact)")
    raw = {
        "repo": repo,
        "window": {"start": start.isoformat(), "end": end.isoformat()},
        "notes": notes,
        **{kind: [c.record for c in found[kind]] for kind in ("deployments", "pull_requests", "commits")},
    }
    ref = await asyncio.to_thread(store.write_json, artifact_path(request.key, "changes"), raw)
    return SourceResult(
        source="changes",
        status="ok",
        reason="; ".join(notes),
        evidence=number("changes", (Finding(c.at, c.summary, c.link) for c in kept)),
        artifact=ref,
    )
