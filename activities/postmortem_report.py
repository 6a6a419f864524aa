"""Post-mortem activities that render the report, publish it and follow its action items through.

- `postmortem_render`: the report as Markdown and HTML (tocsin/postmortem/report.py), written atomically to
  `<postmortem_dir>/<key>.md` and `.html` (the latest revision, for people) and to the artifact store as
  `<key>/report-r<revision>.md` and `.html` (every revision, for the workflow's Draft). A template that does not
  render is a non-retryable `ReportTemplateError`.
- `postmortem_publish`: with GitHub configured (tocsin/postmortem/publish.py), the report committed at the
  policy's `report_path` and one issue per action item, both idempotent; without it, a Publication whose notes
  say where the report stays. Permanent refusals are non-retryable `PublishRejected`; the rest retry as
  `PublishUnavailable`, after GitHub's Retry-After when it gives one.
- `postmortem_follow_up`: each item's issue, open or closed, and overdue (open past its due date). Without
  GitHub, or for an item that has no issue, every item is reported open and overdue by its date alone, with
  `issue_number` 0 (ItemState requires a number; GitHub's start at 1).

The GitHub configuration is read from the environment at each call (GITHUB_TOKEN or GITHUB_TOKEN_FILE,
TOCSIN_GITHUB_REPO, TOCSIN_GITHUB_API_URL), unless a client is given (tests).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import tempfile
from collections.abc import Awaitable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from tocsin.channels.github import GitHubIssues
from tocsin.incident.contracts import KEY_PATTERN
from tocsin.postmortem.artifacts import ArtifactStore
from tocsin.postmortem.contracts import (
    Draft,
    FollowUpReport,
    FollowUpRequest,
    Publication,
    PublishRequest,
    ReportRequest,
)
from tocsin.postmortem.publish import (
    REPORT_PATH,
    GitHubPublisher,
    PublishRejectedError,
    PublishUnavailableError,
    report_path,
    states_by_date,
    unpublished,
)
from tocsin.postmortem.report.render import ReportRenderer, ReportTemplateError
from tocsin.state_dir import private_dir

log = logging.getLogger("tocsin.postmortem")
MARKDOWN_TYPE = "text/markdown; charset=utf-8"
HTML_TYPE = "text/html; charset=utf-8"
_KEY = re.compile(KEY_PATTERN)
T = TypeVar("T")
# Well inside the workflow's heartbeat timeout for publication (workflows/postmortem.py PUBLISH_HEARTBEAT).
HEARTBEAT_EVERY = timedelta(seconds=5)


def write_atomically(path: Path, text: str) -> None:
    """A temporary file beside `path`, then a rename: a reader sees the old file or the new, never half."""
    private_dir(path.parent)  # NamedTemporaryFile is 0600 already, so the renamed file is too
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=path.parent, prefix=f".{path.name}.", delete=False
    ) as f:
        f.write(text)
    Path(f.name).replace(path)


class ReportActivities:
    """`store` holds the drafts; `postmortem_dir` ($TOCSIN_HOME/postmortems) the latest one for people; `home`
    ($TOCSIN_HOME) may hold `templates/postmortem.md.j2` and `postmortem.html.j2` overriding the built-in ones.
    `report_path` is the default when a PublishRequest carries none (the policy's `postmortem.report_path`)."""

    def __init__(
        self,
        store: ArtifactStore,
        postmortem_dir: Path,
        home: Path,
        *,
        report_path: str = REPORT_PATH,
        env: Mapping[str, str] | None = None,
        github: GitHubIssues | None = None,
    ) -> None:
        self.store = store
        self.postmortem_dir = postmortem_dir
        self.home = home
        self.report_path = report_path
        self._env = env
        self._github = github
        self.renderer = ReportRenderer(home)

    # --- render ---

    @activity.defn(name="postmortem_render")
    async def render(self, request: ReportRequest) -> Draft:
        return await asyncio.to_thread(self._render, request)

    def _render(self, request: ReportRequest) -> Draft:
        key = _checked_key(request.incident.key)
        try:
            rendered = self.renderer.render(request, request.published)
        except ReportTemplateError as err:
            raise ApplicationError(
                f"the post-mortem report of {key} does not render: {err}",
                type="ReportTemplateError",
                non_retryable=True,
            ) from None
        # The approved rendering is its own artifact: the reviewed draft's stays as it was reviewed.
        stem = f"{key}/report-r{request.revision}" + ("-approved" if request.approved_by else "")
        markdown = self.store.write_text(f"{stem}.md", rendered.markdown, MARKDOWN_TYPE)
        html = self.store.write_text(f"{stem}.html", rendered.html, HTML_TYPE)
        write_atomically(self.postmortem_dir / f"{key}.md", rendered.markdown)
        write_atomically(self.postmortem_dir / f"{key}.html", rendered.html)
        log.info("post-mortem %s: revision %d rendered (%s)", key, request.revision, markdown.path)
        return Draft(key=key, revision=request.revision, markdown=markdown, html=html)

    # --- publish ---

    @activity.defn(name="postmortem_publish")
    async def publish(self, request: PublishRequest) -> Publication:
        key = _checked_key(request.key)
        try:
            markdown = self.store.read_text(request.draft.markdown)
        except ValueError as err:  # the file no longer has the digest the draft was approved with
            raise ApplicationError(str(err), type="PublishRejected", non_retryable=True) from None
        try:
            publisher = self._publisher(request.report_path)
            if publisher is None:
                where = self.postmortem_dir / f"{key}.md"
                log.info("post-mortem %s: GitHub not configured, the report stays at %s", key, where)
                return unpublished(request.action_items, str(where))
            publication = await _heartbeating(
                asyncio.to_thread(publisher.publish, key, markdown, request.action_items, request.draft.revision)
            )
        except (PublishRejectedError, PublishUnavailableError) as err:
            raise _application_error(err) from None
        log.info(
            "post-mortem %s: published at %s (%s), %d action items",
            key,
            report_path(request.report_path or self.report_path, key),
            publication.report_url,
            len(publication.items),
        )
        return publication

    # --- follow-through ---

    @activity.defn(name="postmortem_follow_up")
    async def follow_up(self, request: FollowUpRequest) -> FollowUpReport:
        try:
            publisher = self._publisher()
            if publisher is None:
                return FollowUpReport(items=states_by_date(request.items, request.today))
            states = await asyncio.to_thread(publisher.states, request.key, request.items, request.today)
        except (PublishRejectedError, PublishUnavailableError) as err:
            raise _application_error(err) from None
        return FollowUpReport(items=states)

    def _publisher(self, path: str | None = None) -> GitHubPublisher | None:
        path = path or self.report_path
        if self._github is not None:
            return GitHubPublisher(self._github, report_path=path)
        env = os.environ if self._env is None else self._env
        return GitHubPublisher.from_env(env, report_path=path)


def _checked_key(key: str) -> str:
    if not _KEY.match(key):
        raise ApplicationError(f"not an incident key: {key[:140]!r}", type="ValueError", non_retryable=True)
    return key


def _application_error(err: PublishRejectedError | PublishUnavailableError) -> ApplicationError:
    if isinstance(err, PublishRejectedError):
        return ApplicationError(str(err), type="PublishRejected", non_retryable=True)
    delay = timedelta(seconds=err.retry_after) if err.retry_after else None
    return ApplicationError(str(err), type="PublishUnavailable", next_retry_delay=delay)


async def _heartbeating(work: Awaitable[T]) -> T:
    """Await `work` (a thread: PyGithub is synchronous), heartbeating meanwhile, so a dead worker is noticed
    within the heartbeat timeout. Publishing is idempotent, so the retry that follows simply finishes it."""
    task = asyncio.ensure_future(work)
    while True:
        activity.heartbeat()
        done, _ = await asyncio.wait({task}, timeout=HEARTBEAT_EVERY.total_seconds())
        if done:
            return task.result()
