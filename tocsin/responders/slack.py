"""Slack's side of a responder action, pure: is the request Slack's, and what does a button click or a
`/tocsin` command ask for.

The signature is Slack's v0 scheme: `X-Slack-Signature: v0=<hex HMAC-SHA256>` over
`v0:<X-Slack-Request-Timestamp>:<raw body>` with the app's signing secret. The timestamp must be within five
minutes of now, so a captured request cannot be replayed later; a replay inside the window is the same update
id (the vendor's event id) and lands once.

A button's `action_id` names the verb (`tocsin_acknowledge`...), its `value` the incident key, its
`action_ts` is the event id, and its `response_url` is where the answer goes (Slack reads nothing of the HTTP
answer to a click; which URLs the receiver calls is tocsin/receiver/slack_response_url.py's). A command reads
`/tocsin VERB [KEY or 4-digit code] [duration]`; its `trigger_id` is the event id. What the person typed
wrong is a `CommandUsageError`, answered to them alone; what Slack itself could not have sent is a
`SlackRequestError` (400).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl

import pydantic_core

from tocsin.durations import format_duration, parse_duration
from tocsin.incident.contracts import KEY_PATTERN
from tocsin.incident.updates import MAX_SNOOZE
from tocsin.responders.contracts import InboundAction, Verb

SIGNATURE_HEADER = "X-Slack-Signature"
TIMESTAMP_HEADER = "X-Slack-Request-Timestamp"
MAX_SKEW_SECONDS = 300
# The Snooze button carries no duration of its own: it is always this long (its label says so).
BUTTON_SNOOZE = timedelta(minutes=30)
BUTTON_VERBS: dict[str, Verb] = {
    f"tocsin_{verb}": verb for verb in ("acknowledge", "escalate", "resolve", "snooze", "take")
}
COMMAND_VERBS: dict[str, Verb] = {
    "ack": "acknowledge",
    "acknowledge": "acknowledge",
    "esc": "escalate",
    "escalate": "escalate",
    "res": "resolve",
    "resolve": "resolve",
    "snooze": "snooze",
    "take": "take",
}
USAGE = (
    "Usage: `/tocsin ack|escalate|resolve|take [KEY or code]` or `/tocsin snooze [KEY or code] [30m]`. "
    "Without a key or code it acts on the latest open incident that paged you."
)
# Slack's ids (U024BE7LH, W0123ABC, 1548426417.840180, 398738663015.47445629121.803a...): checked, so they are
# safe to show back (`<@U024BE7LH>`) and to use in an update id.
_USER_ID = re.compile(r"^[A-Z0-9]{2,32}$")
_EVENT_ID = re.compile(r"^[A-Za-z0-9._-]{1,150}$")
_KEY = re.compile(KEY_PATTERN)
_CODE = re.compile(r"^\d{4}$")
_MAX_FIELDS = 64  # Slack's forms have about 15; more is not Slack
_MAX_URL = 2048  # Slack's response URLs are about 100 characters


class SlackSignatureError(Exception):
    """Not provably Slack's (401). The message names what is wrong, never the secret or the expected value."""


class SlackRequestError(ValueError):
    """Signed, but not a request Tocsin reads (400)."""


class CommandUsageError(ValueError):
    """The person's command cannot be read; the message tells them how to write it."""


def sign(secret: str, timestamp: str, body: bytes) -> str:
    base = b"v0:" + timestamp.encode("ascii") + b":" + body
    return "v0=" + hmac.new(secret.encode("utf-8"), base, hashlib.sha256).hexdigest()


def verify(secret: str, timestamp: str | None, signature: str | None, body: bytes, now: float) -> None:
    """Raise SlackSignatureError unless `signature` is Slack's v0 signature of `body` at a fresh `timestamp`."""
    if not timestamp or not signature:
        raise SlackSignatureError(f"{TIMESTAMP_HEADER} and {SIGNATURE_HEADER} are required")
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        raise SlackSignatureError(f"{TIMESTAMP_HEADER} is not a Unix time")
    if abs(now - int(timestamp)) > MAX_SKEW_SECONDS:
        raise SlackSignatureError(f"{TIMESTAMP_HEADER} is more than {MAX_SKEW_SECONDS} seconds from now")
    # Bytes on both sides: compare_digest refuses non-ASCII str, and a header may carry anything.
    if not hmac.compare_digest(sign(secret, timestamp, body).encode(), signature.encode("utf-8", "replace")):
        raise SlackSignatureError(f"{SIGNATURE_HEADER} does not match the body")


@dataclass(frozen=True)
class SlackAction:
    """What a signed Slack request asks: who (Slack's user id), which verb, which incident, and Slack's id
    for the event. `original` is the message a button was clicked in, when Slack sent it back; `response_url`
    where a click's answer is posted (a command is answered in the HTTP body)."""

    user_id: str
    verb: Verb
    event_id: str
    key: str | None = None
    code: str | None = None
    snooze_for: timedelta | None = None
    button: bool = False
    original: Mapping[str, Any] | None = None
    response_url: str | None = None

    def inbound(self, person: str) -> InboundAction:
        return InboundAction(
            vendor="slack",
            verb=self.verb,
            person=person,
            event_id=self.event_id,
            key=self.key,
            code=self.code,
            snooze_for=self.snooze_for,
        )


def _form(body: bytes) -> dict[str, str]:
    try:
        text = body.decode("utf-8")
        return dict(parse_qsl(text, keep_blank_values=True, max_num_fields=_MAX_FIELDS))
    except UnicodeDecodeError:
        raise SlackRequestError("body: not UTF-8") from None
    except ValueError:
        raise SlackRequestError(f"body: more than {_MAX_FIELDS} form fields") from None


def _checked(value: object, pattern: re.Pattern[str], what: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise SlackRequestError(f"{what}: missing or malformed")
    return value


def parse_action(body: bytes) -> SlackAction:
    """A `block_actions` interactivity callback: the form field `payload`, JSON."""
    raw = _form(body).get("payload")
    if not raw:
        raise SlackRequestError("payload: missing")
    try:
        # jiter: bounded nesting, strict; a ValueError for anything it refuses.
        payload = pydantic_core.from_json(raw, allow_inf_nan=False)
    except ValueError:
        raise SlackRequestError("payload: invalid JSON") from None
    if not isinstance(payload, dict) or payload.get("type") != "block_actions":
        raise SlackRequestError("payload: not a block_actions callback")
    user = payload.get("user")
    user_id = _checked(user.get("id") if isinstance(user, dict) else None, _USER_ID, "payload.user.id")
    actions = payload.get("actions")
    first = actions[0] if isinstance(actions, list) and actions else None
    if not isinstance(first, dict):
        raise SlackRequestError("payload.actions: missing")
    verb = BUTTON_VERBS.get(str(first.get("action_id")))
    if verb is None:
        raise SlackRequestError("payload.actions[0].action_id: not a Tocsin button")
    original = payload.get("message")
    response_url = payload.get("response_url")
    # Every click on a message carries one, and without it the person could not be told what happened.
    if not isinstance(response_url, str) or not 0 < len(response_url) <= _MAX_URL:
        raise SlackRequestError("payload.response_url: missing or malformed")
    return SlackAction(
        user_id=user_id,
        verb=verb,
        event_id=_checked(first.get("action_ts"), _EVENT_ID, "payload.actions[0].action_ts"),
        key=_checked(first.get("value"), _KEY, "payload.actions[0].value"),
        snooze_for=BUTTON_SNOOZE if verb == "snooze" else None,
        button=True,
        original=original if isinstance(original, dict) else None,
        response_url=response_url,
    )


def parse_command(body: bytes) -> SlackAction:
    """A slash command: form fields `user_id`, `text` and `trigger_id`."""
    form = _form(body)
    user_id = _checked(form.get("user_id"), _USER_ID, "user_id")
    event_id = _checked(form.get("trigger_id"), _EVENT_ID, "trigger_id")
    words = (form.get("text") or "").split()
    if not words or words[0].lower() == "help":
        raise CommandUsageError(USAGE)
    verb = COMMAND_VERBS.get(words[0].lower())
    if verb is None:
        raise CommandUsageError(f"Tocsin does not know {words[0][:40]!r}. {USAGE}")
    rest = words[1:]
    snooze_for = None
    if verb == "snooze":
        given = _as_duration(rest[-1]) if rest else None
        if given is not None:
            rest.pop()
            if not timedelta(0) < given <= MAX_SNOOZE:
                raise CommandUsageError(f"A snooze lasts at most {format_duration(MAX_SNOOZE)}. {USAGE}")
        snooze_for = BUTTON_SNOOZE if given is None else given
    if len(rest) > 1:
        raise CommandUsageError(USAGE)
    target = rest[0].lower() if rest else None
    if target is not None and not (_CODE.fullmatch(target) or _KEY.fullmatch(target)):
        raise CommandUsageError(f"{target[:40]!r} is neither an incident key nor a 4-digit code. {USAGE}")
    code = target if target is not None and _CODE.fullmatch(target) else None
    key = target if code is None else None
    return SlackAction(user_id=user_id, verb=verb, event_id=event_id, key=key, code=code, snooze_for=snooze_for)


def _as_duration(word: str) -> timedelta | None:
    try:
        return parse_duration(word)
    except (ValueError, OverflowError):  # "99999999999w" overflows timedelta
        return None
