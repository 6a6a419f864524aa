"""Tickets as GitHub issues, through PyGithub: the `github` channel (`create_ticket`, `schedule_fix`).

Configuration (each may instead be read from the file `NAME_FILE` names): `GITHUB_TOKEN`, `TOCSIN_GITHUB_REPO`
(`owner/name`) and `TOCSIN_GITHUB_API_URL` (default https://api.github.com; `https://HOST/api/v3` for GitHub
Enterprise Server, or a test server).

An issue's body ends with a hidden marker, `<!-- tocsin:<idempotency key> -->`, and the issue is labelled
`tocsin`. Before creating one the adapter lists the repository's `tocsin` issues, open and closed, newest first
(`GET /repos/{owner}/{name}/issues?state=all&labels=tocsin&sort=created&direction=desc`, the most recent
500) and looks for the marker, so a retry after a lost response finds the first attempt's issue instead of
opening a second. (The list is consistent at once; the search API can lag by a minute.) Labels need triage or
push access: a token without it gets unlabelled issues that the lookup cannot find.

The issue's text and table are escaped Markdown with `@` mentions and `#123` references defused, its title the
same without the Markdown escapes (tocsin.channels.escaping): an alert cannot ping people or cross-reference
issues in the name of the token's owner.

The target is extra: `owner/name` files in that repository instead, any other word (`tickets`, `backlog`)
becomes a second label.

PyGithub is synchronous, so each call runs in a thread, with PyGithub's own retries off (a retry is a Temporal
activity attempt) and its pacing between requests kept. Errors: 401, 403 (not rate limiting), 404, 410 and 422
are permanent; 403 or 429 with rate-limit headers, and 5xx, retry after `Retry-After` or until
`X-RateLimit-Reset`; timeouts and refused connections retry.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from tocsin.channels.base import DeliveryError, Message, PermanentDeliveryError, Receipt, RetryableDeliveryError
from tocsin.channels.escaping import github_markdown, github_title
from tocsin.channels.vendor_settings import http_url, setting

# PyGithub is imported inside the functions that build a client or catch its errors, not here: importing it
# costs ~32 MB of RSS and ~500 modules (measured, requests included), which every worker paid at start although
# most installations configure no GitHub (issue #12). The registry imports this module whatever is configured.
if TYPE_CHECKING:
    from github import Github, GithubException

VENDOR = "github"
DEFAULT_API_URL = "https://api.github.com"
LABEL = "tocsin"
SCAN_LIMIT = 500
TIMEOUT_SECONDS = 10
SECONDARY_RATE_LIMIT_WAIT = 60.0  # GitHub: "wait at least one minute" when it names no time


def marker(idempotency_key: str) -> str:
    """The hidden line that identifies a delivery's issue. `-->` inside a key cannot end the comment early."""
    return f"<!-- tocsin:{idempotency_key.replace('--', '-&#45;')} -->"


class GitHubIssues:
    """The `github` channel. `pace=False` drops PyGithub's pause between requests (for tests)."""

    name = "github"
    # GitHub asks for a second between content-creating requests (its secondary rate limits); one token,
    # one pacing key. PyGithub's own pause applies between the calls inside one delivery.
    min_interval: ClassVar[float] = 1.0

    def __init__(self, token: str, repo: str, api_url: str = DEFAULT_API_URL, *, pace: bool = True) -> None:
        if not token:
            raise PermanentDeliveryError(f"{VENDOR}: a token is required")
        if not _is_repo(repo):
            raise PermanentDeliveryError(f"{VENDOR}: the repository must be owner/name")
        self._token = token
        self.repo = repo
        self.api_url = api_url.rstrip("/")
        self._pace = pace

    def __repr__(self) -> str:
        return f"GitHubIssues({self.api_url}, repo={self.repo})"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> GitHubIssues | None:
        """None unless TOCSIN_GITHUB_REPO is set (GITHUB_TOKEN alone is common in CI and means nothing here)."""
        repo = (env.get("TOCSIN_GITHUB_REPO") or "").strip()
        if not repo:
            return None
        token = setting(env, "GITHUB_TOKEN")
        if not token:
            raise PermanentDeliveryError(f"{VENDOR}: TOCSIN_GITHUB_REPO is set but GITHUB_TOKEN is not")
        if not _is_repo(repo):
            raise PermanentDeliveryError("TOCSIN_GITHUB_REPO: must be owner/name")
        return cls(token, repo, http_url(env.get("TOCSIN_GITHUB_API_URL") or DEFAULT_API_URL, "TOCSIN_GITHUB_API_URL"))

    async def send(self, message: Message) -> Receipt:
        return await asyncio.to_thread(self._send, message)

    async def check(self) -> str:
        """GET the repository: proves the token can see it, without writing anything."""
        return await asyncio.to_thread(self._check)

    def issue_body(self, message: Message) -> str:
        facts = [
            ("Incident", message.incident),
            ("Severity", message.severity),
            ("Service", message.service),
            ("Status", message.status),
            ("At", message.at.isoformat()),
        ]
        # The text and every value are the alert's or a caller's: literal Markdown, no mention, no reference.
        table = "\n".join(f"| {k} | {github_markdown(v, inline=True)} |" for k, v in facts if v)
        text = github_markdown(message.text)
        return f"{text}\n\n| | |\n|---|---|\n{table}\n\n{marker(message.idempotency_key)}\n"

    # --- in a thread ---

    def _github(self, *, lazy: bool = False) -> Github:
        """A client per call, so no connection is shared between threads. Lazy: `get_repo` sends nothing itself."""
        from github import Auth, Github  # the first client loads PyGithub (the note on imports at the top)

        pacing: dict[str, Any] = (
            {} if self._pace else {"seconds_between_requests": None, "seconds_between_writes": None}
        )
        return Github(
            base_url=self.api_url,
            auth=Auth.Token(self._token),
            retry=None,
            timeout=TIMEOUT_SECONDS,
            per_page=100,
            lazy=lazy,
            **pacing,
        )

    def _send(self, message: Message) -> Receipt:
        from github import GithubException

        repo_name, labels = self._placement(message.target)
        wanted = marker(message.idempotency_key)
        with self._github(lazy=True) as github:
            try:
                repo = github.get_repo(repo_name)
                issues = repo.get_issues(state="all", labels=[LABEL], sort="created", direction="desc")
                for seen, issue in enumerate(issues):
                    if seen >= SCAN_LIMIT:
                        break
                    if wanted in (issue.body or ""):
                        return Receipt(provider_id=f"{repo_name}#{issue.number}", duplicate=True)
                created = repo.create_issue(title=_title(message), body=self.issue_body(message), labels=labels)
            except (GithubException, OSError) as err:
                raise _delivery_error(err) from None
        return Receipt(provider_id=f"{repo_name}#{created.number}")

    def _check(self) -> str:
        from github import GithubException

        with self._github() as github:
            try:
                repo = github.get_repo(self.repo)
                full_name, has_issues = repo.full_name, repo.has_issues
            except (GithubException, OSError) as err:
                raise _delivery_error(err) from None
        if not has_issues:
            raise PermanentDeliveryError(f"{VENDOR}: {full_name} has issues disabled")
        return f"{VENDOR}: {full_name} (issues enabled)"

    def _placement(self, target: str) -> tuple[str, list[str]]:
        target = target.strip()
        if _is_repo(target):
            return target, [LABEL]
        return self.repo, [LABEL, target] if target and target != LABEL else [LABEL]


def _delivery_error(err: GithubException | OSError) -> DeliveryError:
    if isinstance(err, OSError):
        # requests' errors are OSErrors; a timeout is any of its Timeout classes.
        if any(cls.__name__ in ("Timeout", "TimeoutError") for cls in type(err).__mro__):
            return RetryableDeliveryError(f"{VENDOR} timed out after {TIMEOUT_SECONDS}s")
        return RetryableDeliveryError(f"{VENDOR} unreachable: {type(err).__name__}")
    from github import RateLimitExceededException  # loaded already: err came from a PyGithub call

    status = err.status
    data = err.data if isinstance(err.data, dict) else {}
    text = str(data.get("message") or err.message or "")
    errors = data.get("errors")
    if isinstance(errors, list) and errors:
        text += " (" + "; ".join(_describe(e) for e in errors[:3]) + ")"
    reason = f"{VENDOR} answered {status}" + (f": {text[:300]}" if text else "")
    headers = {k.lower(): v for k, v in (err.headers or {}).items()}
    limited = isinstance(err, RateLimitExceededException) or (
        status in (403, 429) and ("retry-after" in headers or headers.get("x-ratelimit-remaining") == "0")
    )
    if limited or status == 429:
        return RetryableDeliveryError(reason, _rate_limit_wait(headers))
    if status >= 500:
        return RetryableDeliveryError(reason, _seconds(headers.get("retry-after")))
    return PermanentDeliveryError(reason)


def _rate_limit_wait(headers: Mapping[str, str]) -> float:
    """GitHub's order: Retry-After; else, with no requests left, until X-RateLimit-Reset; else a minute."""
    after = _seconds(headers.get("retry-after"))
    if after is not None:
        return after
    reset = _seconds(headers.get("x-ratelimit-reset"))
    if headers.get("x-ratelimit-remaining") == "0" and reset is not None:
        return max(reset - time.time(), 0.0)
    return SECONDARY_RATE_LIMIT_WAIT


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _describe(error: Any) -> str:
    if isinstance(error, dict):
        return str(error.get("message") or " ".join(f"{k}={v}" for k, v in error.items() if k != "resource"))
    return str(error)


def _title(message: Message) -> str:
    first_line = message.text.strip().splitlines()[0] if message.text.strip() else ""
    return github_title(message.title or first_line or message.incident)


def _is_repo(value: str) -> bool:
    owner, sep, name = value.partition("/")
    return bool(sep and owner and name and "/" not in name and " " not in value)
