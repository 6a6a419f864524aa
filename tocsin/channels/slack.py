"""Slack through the Web API: posts to named channels, and a war room per incident with a pinned summary.

Calls go to `{TOCSIN_SLACK_API_URL}/<method>` (default https://slack.com/api) with `Authorization: Bearer`;
writes are JSON bodies, reads (`conversations.list`, `pins.list`, `conversations.history`) are GETs.
What a message says (a header block for the title, escaped mrkdwn sections, no parsing of mentions) is
tocsin.channels.slack_format's.

Targets (the `target` of a delivery):
- `#inc-<key>` of the delivery's own incident: the war room. Made idempotent in four steps, so that a retried
  activity, a second worker or a later update never creates a second channel or a second summary:
  1. `conversations.create` of `inc-<key>` (lower-cased, at most 80 characters: Slack's channel-name rule);
     Slack refuses a taken name with `name_taken`, which is answered by finding the channel in
     `conversations.list` (joining it if public and not yet a member). Creating first and looking up on
     `name_taken` is the same "lookup before create" without paging through every channel of the workspace
     for each new incident, and without a race between the lookup and the create.
  2. `conversations.invite` of the configured stakeholders (`force`: valid ids are invited, `already_in_channel`
     is fine). A refused invitation is logged and does not fail the delivery.
  3. The summary is the message carrying Slack message metadata `event_type: tocsin_incident_summary` for
     this incident: looked for in `pins.list`, then in the latest `conversations.history` (with
     `include_all_metadata`), which catches a summary posted by an attempt that failed before pinning it.
  4. None: `chat.postMessage` then `pins.add` (`already_pinned` is fine). Found: `chat.update` of that `ts`,
     skipped when it already carries this delivery's key (the receipt then says `duplicate`).
  Within one worker, deliveries to the same war room are serialised (create_war_room and
  create_slack_channel of one incident arrive together). Two workers racing on the same new war room can
  still both post a summary; the later updates go to whichever the lookup finds first.
- `post:<channel>`: a plain post, even in the war room (whose summary it leaves alone): the post-mortem's draft.
- `team:<name>`: the team's channel, `#team-<name>` (`TOCSIN_SLACK_TEAM_CHANNEL`, a format with `{team}`).
- anything else (`#incidents`, `#leadership`, a channel id, a user id): `chat.postMessage` to it as given.
  Slack has no idempotency key for `chat.postMessage` (`client_msg_id` is set by Slack's own clients and is
  not a documented argument): every post carries metadata `event_type: tocsin_notification` with the
  delivery's key, so a duplicate is identifiable, but a retry after a lost answer (a timeout after Slack
  accepted the post) can post twice. That residual risk is accepted: looking a post up before every post
  would cost a `conversations.history` call per notification, which Slack rate-limits hardest.

Errors: Slack answers most failures with HTTP 200 and `{"ok": false, "error": "..."}`. `ratelimited`
(HTTP 429 with Retry-After) and Slack's own server errors (`internal_error`, `fatal_error`,
`service_unavailable`, `request_timeout`, HTTP 5xx) are retryable; everything else (`invalid_auth`,
`not_authed`, `channel_not_found`, `is_archived`, `missing_scope` with the scope `needed`, ...) is permanent.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import httpx

from tocsin.channels import _http
from tocsin.channels.base import Message, PermanentDeliveryError, Receipt, RetryableDeliveryError
from tocsin.channels.slack_format import NO_PARSING, NO_UNFURLING, post_content
from tocsin.channels.slack_war_room import SUMMARY_EVENT as SUMMARY_EVENT  # re-exported for tests
from tocsin.channels.slack_war_room import WarRoom
from tocsin.channels.vendor_settings import http_url, redact, setting

log = logging.getLogger("tocsin.channels.slack")

DEFAULT_API_URL = "https://slack.com/api"
NOTIFICATION_EVENT = "tocsin_notification"
# `post:#inc-<key>`: a plain message in the war room instead of rewriting its pinned summary.
POST_PREFIX = "post:"
RETRYABLE_ERRORS = frozenset(
    {"ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
NAME_LIMIT = 80
# What `check` compares against the token's granted scopes (the x-oauth-scopes header), when Slack sends it.
NEEDED_SCOPES = ("chat:write", "channels:manage", "channels:read", "channels:join", "channels:history", "pins:read")
NEEDED_SCOPES_WRITE = ("pins:write",)


def channel_name(name: str) -> str:
    """A valid Slack channel name: lower case letters, digits, `-` and `_`, at most 80 characters (a long
    name keeps its start and gains a short hash, so two long keys stay apart)."""
    clean = re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-") or "incident"
    if len(clean) <= NAME_LIMIT:
        return clean
    digest = hashlib.sha256(clean.encode()).hexdigest()[:10]
    return f"{clean[: NAME_LIMIT - 11].rstrip('-')}-{digest}"


def war_room_name(incident: str) -> str:
    return channel_name(f"inc-{incident}")


class SlackChannel(WarRoom):
    name: ClassVar[str] = "slack"
    vendor: ClassVar[str] = "slack"
    # chat.postMessage: about 1 message per second per channel (Slack's documented special rate limit).
    min_interval: ClassVar[float] = 1.0

    def __init__(
        self,
        token: str,
        api_url: str = DEFAULT_API_URL,
        *,
        war_room_users: Sequence[str] = (),
        team_channel: str = "#team-{team}",
        private_war_rooms: bool = False,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float | None = None,
    ) -> None:
        self._token = token
        self.api_url = http_url(api_url, "TOCSIN_SLACK_API_URL").rstrip("/")
        self.war_room_users = tuple(u for u in war_room_users if u)
        self.team_channel = team_channel
        self.private_war_rooms = private_war_rooms
        self._transport = transport
        self._timeout = timeout
        self._rooms: dict[str, str] = {}  # war room name -> channel id, once seen
        self._invited: set[str] = set()
        self._locks: dict[str, asyncio.Lock] = {}

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SlackChannel | None:
        token = setting(env, "TOCSIN_SLACK_TOKEN")
        if not token:
            return None
        url = (env.get("TOCSIN_SLACK_API_URL") or "").strip() or DEFAULT_API_URL
        users = [u.strip() for u in (env.get("TOCSIN_SLACK_WAR_ROOM_USERS") or "").split(",") if u.strip()]
        team = (env.get("TOCSIN_SLACK_TEAM_CHANNEL") or "").strip() or "#team-{team}"
        if "{team}" not in team:
            raise PermanentDeliveryError("TOCSIN_SLACK_TEAM_CHANNEL: a channel name containing {team}")
        private = (env.get("TOCSIN_SLACK_PRIVATE_WAR_ROOMS") or "").strip().lower() in ("1", "true", "yes")
        return cls(token, url, war_room_users=users, team_channel=team, private_war_rooms=private)

    def __repr__(self) -> str:
        return f"SlackChannel(api_url={self.api_url!r})"

    # -- HTTP ----------------------------------------------------------------------------------------------

    def _client(self) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {self._token}"}
        return _http.client(self.api_url, transport=self._transport, timeout=self._timeout, headers=headers)

    async def _call(
        self,
        http: httpx.AsyncClient,
        method: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        ok_errors: frozenset[str] = frozenset(),
    ) -> dict[str, Any]:
        """One Web API call. Returns Slack's answer when `ok` (or its error is one of `ok_errors`)."""
        if body is not None:
            request = http.post(
                f"/{method}",
                content=json.dumps(body).encode(),
                headers={"Content-Type": "application/json; charset=utf-8"},
            )
        else:
            request = http.get(f"/{method}", params=params)
        response = await _http.send(f"{self.vendor} {method}", request)
        try:
            answer = response.json()
        except ValueError:
            answer = None
        answer = answer if isinstance(answer, dict) else {}
        error = str(answer.get("error") or "")
        if not response.is_success:
            _http.raise_for_vendor(f"{self.vendor} {method}", response, self._reason(answer))
        if answer.get("ok") is True or (error and error in ok_errors):
            return answer
        reason = f"{self.vendor} {method}: {self._reason(answer) or 'answer without ok'}"
        if error in RETRYABLE_ERRORS:
            raise RetryableDeliveryError(reason, _http.retry_after(response))
        raise PermanentDeliveryError(reason)

    def _reason(self, answer: Mapping[str, Any]) -> str:
        error = str(answer.get("error") or "")
        if error == "missing_scope" and answer.get("needed"):
            error += f" (needs {answer['needed']})"
        notes = (answer.get("response_metadata") or {}).get("messages") if error else None
        if isinstance(notes, list) and notes:  # e.g. invalid_arguments: which argument, and why
            error += ": " + "; ".join(str(n) for n in notes[:3])
        return redact(error[:300], self._token)

    # -- sending -------------------------------------------------------------------------------------------

    def _channel_for(self, target: str) -> str:
        if target.startswith("team:"):
            return self.team_channel.format(team=channel_name(target.removeprefix("team:")))
        return target

    def pace_key(self, message: Message) -> str:
        """The Slack channel the message lands in: Slack counts posts per channel, so `post:#inc-x` and
        `#inc-x` (or `#INC-X`) share one key."""
        channel = self._channel_for(message.target.removeprefix(POST_PREFIX).strip())
        return f"#{channel_name(channel[1:])}" if channel.startswith("#") else channel

    async def send(self, message: Message) -> Receipt:
        room = war_room_name(message.incident)
        if message.target.startswith(POST_PREFIX):
            # A message in the war room (the post-mortem's draft), leaving its pinned summary alone.
            return await self._post_in(message, message.target.removeprefix(POST_PREFIX), room)
        if message.target.startswith("#") and channel_name(message.target[1:]) == room:
            lock = self._locks.setdefault(room, asyncio.Lock())
            async with lock, self._client() as http:
                try:
                    return await self._war_room(http, room, message)
                except PermanentDeliveryError:
                    self._rooms.pop(room, None)  # archived or deleted since: look it up afresh next time
                    raise
        async with self._client() as http:
            return await self._post(http, self._channel_for(message.target), message)

    async def _post_in(self, message: Message, target: str, room: str) -> Receipt:
        async with self._client() as http:
            is_room = target.startswith("#") and channel_name(target[1:]) == room
            channel = await self._room(http, room) if is_room else self._channel_for(target)
            return await self._post(http, channel, message)

    async def _post(self, http: httpx.AsyncClient, channel: str, message: Message) -> Receipt:
        answer = await self._call(
            http,
            "chat.postMessage",
            body={
                "channel": channel,
                **post_content(message),
                **NO_PARSING,
                **NO_UNFURLING,
                "metadata": self._metadata(NOTIFICATION_EVENT, message),
            },
        )
        log.debug("slack post %s -> %s: %s", message.idempotency_key, channel, answer.get("ts"))
        return Receipt(provider_id=f"{answer.get('channel') or channel}:{answer.get('ts')}")

    @staticmethod
    def _metadata(event_type: str, message: Message) -> dict[str, Any]:
        payload = {"incident": message.incident, "delivery": message.idempotency_key, "status": message.status}
        return {"event_type": event_type, "event_payload": payload}

    # -- check ---------------------------------------------------------------------------------------------

    async def check(self) -> str:
        async with self._client() as http:
            response = await _http.send(f"{self.vendor} auth.test", http.post("/auth.test"))
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        answer = answer if isinstance(answer, dict) else {}
        if not response.is_success:
            _http.raise_for_vendor(f"{self.vendor} auth.test", response, self._reason(answer))
        if answer.get("ok") is not True:
            reason = f"{self.vendor} auth.test: {self._reason(answer) or 'answer without ok'}"
            if answer.get("error") in RETRYABLE_ERRORS:
                raise RetryableDeliveryError(reason, _http.retry_after(response))
            raise PermanentDeliveryError(reason)
        user = answer.get("user") or answer.get("user_id") or "?"
        who = f"{user} in {answer.get('team') or answer.get('team_id') or '?'}"
        line = f"authenticated as {who}" + (f" ({answer['url']})" if answer.get("url") else "")
        granted = response.headers.get("x-oauth-scopes")
        if granted is not None:
            have = {s.strip() for s in granted.split(",")}
            missing = [s for s in (*NEEDED_SCOPES, *NEEDED_SCOPES_WRITE) if s not in have]
            if missing:
                line += f"; missing scopes for war rooms: {', '.join(missing)}"
        return line
