"""Publishing an approved post-mortem to GitHub, idempotently, and reading its action items' issues back.

Configured like the `github` channel (tocsin/channels/github.py), whose client this reuses: `GITHUB_TOKEN` (or
`GITHUB_TOKEN_FILE`), `TOCSIN_GITHUB_REPO` (`owner/name`), `TOCSIN_GITHUB_API_URL`. Without TOCSIN_GITHUB_REPO
nothing is published: the report stays on disk (the activity says so in the Publication's notes).

The report is committed to the policy's `report_path` (`postmortems/{key}.md`) on the default branch:
`GET /repos/{o}/{r}/contents/{path}`; absent, it is created; present with other bytes (its blob sha differs from
the report's), it is updated with the sha it had; identical, nothing is written. A retried publish therefore
makes no second commit.

Each action item becomes one issue labelled `postmortem`, `action-item` and `priority:P1..P3`, whose body links
the report and ends with `<!-- tocsin:postmortem:<key>:item:<digest> -->`, the digest being the first 16 hex
digits of the sha256 of the item's title, case and whitespace folded. Before opening any, the repository's
`postmortem` issues (open and closed, newest first, the most recent 500) are read once and searched for the
markers: an item whose issue exists is not filed again, and two items with the same title share one issue.
An issue's title and body are escaped as the `github` channel's are (tocsin.channels.escaping): Markdown made
literal, `@` mentions and `#123` references defused; the marker's digest is of the title as written.

Errors: 401, 403 (not rate limiting), 404, 410 and 422 are PublishRejected (permanent); 409 (the file changed
between read and write), 429, rate-limited 403s, 5xx, timeouts and refused connections are PublishUnavailable
(retry, after `Retry-After` or `X-RateLimit-Reset` when GitHub gives one).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

from tocsin.channels.base import DeliveryError, PermanentDeliveryError, RetryableDeliveryError
from tocsin.channels.escaping import github_markdown, github_title
from tocsin.channels.github import SCAN_LIMIT, GitHubIssues, _delivery_error, marker
from tocsin.postmortem.contracts import ActionItem, ItemState, Publication, PublishedItem
from tocsin.postmortem.report.view import title_digest

# PyGithub (~32 MB of RSS, measured) is imported in the methods that call GitHub, as in tocsin.channels.github:
# the worker imports this module whether or not GitHub is configured (issue #12).
if TYPE_CHECKING:
    from github import GithubException

REPORT_PATH = "postmortems/{key}.md"
LABEL = "postmortem"
NO_ISSUE = 0  # ItemState.issue_number of an item that has no issue (ItemState requires a number)


class PublishRejectedError(Exception):
    """GitHub refused, and will refuse again: credentials, permissions, a missing repository, a bad request."""


class PublishUnavailableError(Exception):
    """Try again: GitHub is down, slow, rate limiting, or the file moved under us. `retry_after` in seconds."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def report_path(template: str, key: str) -> str:
    """The repository path of `key`'s report. Only `{key}` is replaced: other braces are kept as they are."""
    return template.replace("{key}", key)


def item_marker(key: str, title: str) -> str:
    return marker(f"postmortem:{key}:item:{title_digest(title)}")


def item_labels(item: ActionItem) -> list[str]:
    return [LABEL, "action-item", f"priority:{item.priority}"]


def git_blob_sha(data: bytes) -> str:
    """The sha GitHub's contents API gives a file: git's blob id of its bytes."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def unpublished(items: Sequence[ActionItem], where: str) -> Publication:
    """What publishing says without GitHub: nothing was filed, the report stays on disk."""
    return Publication(
        items=[PublishedItem(title=i.title, owner=i.owner, due=i.due) for i in items],
        notes=[f"GitHub not configured (TOCSIN_GITHUB_REPO): the report stays at {where}"],
    )


def states_by_date(items: Sequence[PublishedItem], today: date) -> list[ItemState]:
    """Without GitHub (or without an issue) an item is taken as open; it is overdue once its due date passed."""
    return [
        ItemState(
            issue_number=i.issue_number if i.issue_number is not None else NO_ISSUE, open=True, overdue=i.due < today
        )
        for i in items
    ]


class GitHubPublisher:
    """The report's commit and the action items' issues, through the `github` channel's client (its
    configuration, its PyGithub client without retries, its error classes and its hidden-marker idea)."""

    def __init__(self, client: GitHubIssues, *, report_path: str = REPORT_PATH) -> None:
        self._client = client
        self.repo = client.repo
        self.report_path = report_path

    def __repr__(self) -> str:
        return f"GitHubPublisher({self._client.api_url}, repo={self.repo})"

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, report_path: str = REPORT_PATH) -> GitHubPublisher | None:
        """None unless TOCSIN_GITHUB_REPO is set; a half configuration is a PublishRejectedError."""
        try:
            client = GitHubIssues.from_env(env)
        except PermanentDeliveryError as err:
            raise PublishRejectedError(str(err)) from None
        return cls(client, report_path=report_path) if client is not None else None

    # --- synchronous: run these in a thread ---

    def publish(self, key: str, markdown: str, items: Sequence[ActionItem], revision: int) -> Publication:
        from github import GithubException, UnknownObjectException

        path = report_path(self.report_path, key)
        data = markdown.encode()
        step = f"reading {path}"
        with self._client._github(lazy=True) as github:
            try:
                repo = github.get_repo(self.repo)
                try:
                    existing: Any = repo.get_contents(path)
                except UnknownObjectException:
                    existing = None
                if isinstance(existing, list):
                    raise PublishRejectedError(f"publishing {key}: {path} is a directory in {self.repo}")
                message = f"Post-mortem of {key}, revision {revision}"
                notes: list[str] = []
                if existing is None:
                    step = f"creating {path}"
                    report_url = str(repo.create_file(path, message, data)["content"].html_url)
                elif existing.sha != git_blob_sha(data):
                    step = f"updating {path} (sha {existing.sha})"
                    report_url = str(repo.update_file(path, message, data, existing.sha)["content"].html_url)
                else:
                    report_url = str(existing.html_url)
                    notes.append(f"{path} is already up to date in {self.repo}: not committed again")
                step = f"listing the {LABEL} issues"
                found = self._existing_issues(repo, key, items)
                published = []
                for item in items:
                    wanted = item_marker(key, item.title)
                    if wanted not in found:
                        step = f"opening the issue for {' '.join(item.title.split())[:80]!r}"
                        found[wanted] = repo.create_issue(
                            title=github_title(item.title),
                            body=self.issue_body(key, item, report_url),
                            labels=item_labels(item),
                        )
                    issue = found[wanted]
                    published.append(
                        PublishedItem(
                            title=item.title,
                            owner=item.owner,
                            due=item.due,
                            issue_number=issue.number,
                            issue_url=str(issue.html_url or ""),
                        )
                    )
            except (GithubException, OSError) as err:
                raise _publish_error(err, f"publishing {key} to {self.repo}: {step}") from None
        return Publication(report_url=report_url, items=published, notes=notes)

    def states(self, key: str, items: Sequence[PublishedItem], today: date) -> list[ItemState]:
        """Each item's issue: open or closed, and overdue when still open past its due date. An item without an
        issue is judged by its date alone (states_by_date)."""
        from github import GithubException

        results = []
        step = "reading its issues"
        with self._client._github(lazy=True) as github:
            try:
                repo = github.get_repo(self.repo)
                for item in items:
                    if item.issue_number is None:
                        results.extend(states_by_date([item], today))
                        continue
                    step = f"reading issue #{item.issue_number}"
                    is_open = repo.get_issue(item.issue_number).state == "open"
                    results.append(
                        ItemState(issue_number=item.issue_number, open=is_open, overdue=is_open and item.due < today)
                    )
            except (GithubException, OSError) as err:
                raise _publish_error(err, f"following up {key} in {self.repo}: {step}") from None
        return results

    def issue_body(self, key: str, item: ActionItem, report_url: str) -> str:
        facts = [
            ("Owner", item.owner),
            ("Priority", item.priority),
            ("Due", item.due.isoformat()),
            ("Origin", item.origin),
            ("Evidence", ", ".join(item.evidence)),
        ]
        # Owners, descriptions and evidence come from the analysis (an LLM's reading of alert text): literal
        # Markdown with mentions and references defused, so an item cannot ping anyone or link other issues.
        table = "\n".join(f"| {k} | {github_markdown(v, inline=True)} |" for k, v in facts if v)
        description = f"{github_markdown(item.description)}\n\n" if item.description.strip() else ""
        shown = github_markdown(key, inline=True)
        report = f"[the post-mortem of {shown}]({report_url})" if report_url else f"the post-mortem of {shown}"
        return (
            f"Action item from {report}.\n\n{description}| | |\n|---|---|\n{table}\n\n{item_marker(key, item.title)}\n"
        )

    def _existing_issues(self, repo: Any, key: str, items: Sequence[ActionItem]) -> dict[str, Any]:
        """marker -> issue, for the items' markers found among the recent `postmortem` issues."""
        wanted = {item_marker(key, item.title) for item in items}
        found: dict[str, Any] = {}
        if not wanted:
            return found
        issues = repo.get_issues(state="all", labels=[LABEL], sort="created", direction="desc")
        for seen, issue in enumerate(issues):
            if seen >= SCAN_LIMIT or len(found) == len(wanted):
                break
            body = issue.body or ""
            for mark in wanted - found.keys():
                if mark in body:
                    found[mark] = issue
        return found


def _publish_error(err: GithubException | OSError, context: str) -> Exception:
    from github import GithubException  # loaded already: err came from a PyGithub call

    if isinstance(err, GithubException) and err.status == 409:
        return PublishUnavailableError(f"{context}: github answered 409: the file changed meanwhile")
    mapped: DeliveryError = _delivery_error(err)
    if isinstance(mapped, RetryableDeliveryError):
        return PublishUnavailableError(f"{context}: {mapped}", mapped.retry_after)
    return PublishRejectedError(f"{context}: {mapped}")
