"""The Slack war room: one channel per incident (`inc-<key>`), stakeholders invited, one pinned summary kept
current. A mixin of SlackChannel (tocsin.channels.slack), whose docstring explains the four idempotent steps;
it uses the channel's Web API call (`_call`); the summary's text and blocks come from slack_format.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx

from tocsin.channels.base import Message, PermanentDeliveryError, Receipt
from tocsin.channels.slack_format import NO_PARSING, NO_UNFURLING, summary_content

log = logging.getLogger("tocsin.channels.slack")

SUMMARY_EVENT = "tocsin_incident_summary"
HISTORY_PAGES = 3
LIST_PAGES = 100


@dataclass(frozen=True)
class _Summary:
    ts: str
    delivery: str
    pinned: bool


class WarRoom:
    vendor: ClassVar[str]
    private_war_rooms: bool
    war_room_users: tuple[str, ...]
    _rooms: dict[str, str]
    _invited: set[str]

    async def _call(
        self,
        http: httpx.AsyncClient,
        method: str,
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        ok_errors: frozenset[str] = frozenset(),
    ) -> dict[str, Any]:
        raise NotImplementedError

    @staticmethod
    def _metadata(event_type: str, message: Message) -> dict[str, Any]:
        raise NotImplementedError

    async def _war_room(self, http: httpx.AsyncClient, room: str, message: Message) -> Receipt:
        channel = await self._room(http, room)
        await self._invite(http, channel)
        summary = await self._find_summary(http, channel, message.incident)
        content = summary_content(message)  # text and blocks, untrusted values escaped (slack_format)
        metadata = self._metadata(SUMMARY_EVENT, message)
        if summary is not None and summary.delivery == message.idempotency_key:
            if not summary.pinned:
                await self._pin(http, channel, summary.ts)
            log.debug("slack war room %s: summary %s already has %s", room, summary.ts, message.idempotency_key)
            return Receipt(provider_id=f"{channel}:{summary.ts}", duplicate=True)
        if summary is not None:
            answer = await self._call(
                http,
                "chat.update",
                body={"channel": channel, "ts": summary.ts, **content, **NO_PARSING, "metadata": metadata},
                ok_errors=frozenset({"message_not_found"}),
            )
            if answer.get("ok"):
                if not summary.pinned:
                    await self._pin(http, channel, summary.ts)
                log.debug("slack war room %s: summary %s updated", room, summary.ts)
                return Receipt(provider_id=f"{channel}:{summary.ts}")
        answer = await self._call(
            http,
            "chat.postMessage",
            body={"channel": channel, **content, **NO_PARSING, **NO_UNFURLING, "metadata": metadata},
        )
        ts = str(answer.get("ts"))
        await self._pin(http, channel, ts)
        log.debug("slack war room %s: summary %s posted and pinned", room, ts)
        return Receipt(provider_id=f"{channel}:{ts}")

    async def _room(self, http: httpx.AsyncClient, room: str) -> str:
        known = self._rooms.get(room)
        if known:
            return known
        answer = await self._call(
            http,
            "conversations.create",
            body={"name": room, "is_private": self.private_war_rooms},
            ok_errors=frozenset({"name_taken"}),
        )
        if answer.get("ok"):
            created = answer.get("channel")
            if not isinstance(created, dict) or not created.get("id"):
                raise PermanentDeliveryError(f"{self.vendor} conversations.create: answer without a channel id")
            channel_id = str(created["id"])
            log.info("slack war room #%s created (%s)", room, channel_id)
        else:
            found = await self._find_channel(http, room)
            if found is None:
                raise PermanentDeliveryError(
                    f"{self.vendor}: #{room} is taken by a channel this app cannot see (private, and not a member)"
                )
            if found.get("is_archived"):
                raise PermanentDeliveryError(f"{self.vendor}: war room #{room} is archived")
            channel_id = str(found["id"])
            if found.get("is_member") is False and not found.get("is_private"):
                await self._call(http, "conversations.join", body={"channel": channel_id})
        self._rooms[room] = channel_id
        return channel_id

    async def _find_channel(self, http: httpx.AsyncClient, room: str) -> dict[str, Any] | None:
        types = "public_channel,private_channel" if self.private_war_rooms else "public_channel"
        params = {"types": types, "exclude_archived": "false", "limit": "200"}
        async for channel in self._paged(http, "conversations.list", params, "channels", LIST_PAGES):
            if isinstance(channel, dict) and channel.get("name") == room:
                return channel
        return None

    async def _paged(
        self, http: httpx.AsyncClient, method: str, params: dict[str, str], key: str, pages: int
    ) -> AsyncIterator[Any]:
        """The items of a cursor-paginated Slack method, page by page, at most `pages` pages."""
        cursor = ""
        for _ in range(pages):
            answer = await self._call(http, method, params={**params, "cursor": cursor} if cursor else params)
            for item in answer.get(key) or []:
                yield item
            cursor = str((answer.get("response_metadata") or {}).get("next_cursor") or "")
            if not cursor:
                return

    async def _invite(self, http: httpx.AsyncClient, channel: str) -> None:
        if not self.war_room_users or channel in self._invited:
            return
        try:
            await self._call(
                http,
                "conversations.invite",
                body={"channel": channel, "users": ",".join(self.war_room_users), "force": True},
                ok_errors=frozenset({"already_in_channel", "cant_invite_self"}),
            )
        except PermanentDeliveryError as err:
            log.warning("slack war room %s: stakeholders not invited: %s", channel, err)
            return
        self._invited.add(channel)

    async def _find_summary(self, http: httpx.AsyncClient, channel: str, incident: str) -> _Summary | None:
        answer = await self._call(http, "pins.list", params={"channel": channel})
        for item in answer.get("items") or []:
            found = self._summary_in(item.get("message") if isinstance(item, dict) else None, incident, True)
            if found:
                return found
        params = {"channel": channel, "limit": "200", "include_all_metadata": "true"}
        async for item in self._paged(http, "conversations.history", params, "messages", HISTORY_PAGES):
            pinned = bool(item.get("pinned_to")) if isinstance(item, dict) else False
            found = self._summary_in(item, incident, pinned)
            if found:
                return found
        return None

    @staticmethod
    def _summary_in(item: object, incident: str, pinned: bool) -> _Summary | None:
        if not isinstance(item, dict) or not item.get("ts"):
            return None
        metadata = item.get("metadata")
        if not isinstance(metadata, dict) or metadata.get("event_type") != SUMMARY_EVENT:
            return None
        payload = metadata.get("event_payload")
        if not isinstance(payload, dict) or payload.get("incident") != incident:
            return None
        return _Summary(ts=str(item["ts"]), delivery=str(payload.get("delivery") or ""), pinned=pinned)

    async def _pin(self, http: httpx.AsyncClient, channel: str, ts: str) -> None:
        await self._call(
            http, "pins.add", body={"channel": channel, "timestamp": ts}, ok_errors=frozenset({"already_pinned"})
        )
