"""Slack's way back in: `POST /api/v1/slack/actions` (a click on an incident's buttons, Slack's interactivity
callback) and `POST /api/v1/slack/commands` (the `/tocsin` slash command).

Each request goes through, in order:
1. `TOCSIN_SLACK_SIGNING_SECRET` unset → 404: nothing from Slack is ever acted on unverified;
2. the body, bounded by the receiver's own limit (`TOCSIN_INGEST_MAX_BYTES`) → 413;
3. Slack's v0 signature, within five minutes → 401 (tocsin.responders.slack);
4. the form and its payload → 415 or 400 for what Slack would not send; a command the person mistyped is
   answered to them alone, with the usage; a click whose `response_url` is not Slack's → 400, logged
   (tocsin.receiver.slack_response_url);
5. the Slack user, through the roster's `slack:` ids: someone not in the roster is told so, and logged;
6. `act`, as that person, via Slack: the answer says what the incident did. Temporal unreachable (or not
   answering before Slack gives up, at three seconds) → 503; the incident refusing → said to the person.

A click replaces the message it came from: the same message, its buttons replaced by who did what and the
buttons the new status allows (`replace_original`); a command is answered with a message in the channel, so everyone
there sees who acted. Refusals are ephemeral: only the person sees them. Slack reads a command's answer from
the HTTP body, but ignores the body of the answer to a click: a click is answered 200 with an empty body,
and its message is POSTed to the click's `response_url` once that answer is sent. The errors of steps 1-6
stay HTTP answers for both (Slack shows the person that the click failed).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.background import BackgroundTask
from starlette.requests import ClientDisconnect
from temporalio.service import RPCError

from tocsin.channels.escaping import slack_text
from tocsin.channels.slack_format import acted_content
from tocsin.intake.contracts import TemporalUnavailable
from tocsin.receiver.config import DEFAULT_MAX_BYTES
from tocsin.receiver.gate import RETRY_AFTER_SECONDS, Problem
from tocsin.receiver.responder_settings import SLACK_SECRET, Responders, not_configured
from tocsin.receiver.slack_response_url import ResponseUrls
from tocsin.responders.contracts import ActOutcome, NotActed
from tocsin.responders.identity import person_for
from tocsin.responders.slack import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    CommandUsageError,
    SlackAction,
    SlackRequestError,
    SlackSignatureError,
    parse_action,
    parse_command,
    verify,
)

log = logging.getLogger("tocsin.receiver.slack")

ACTIONS_PATH = "/api/v1/slack/actions"
COMMANDS_PATH = "/api/v1/slack/commands"
# Slack shows the person an error when the answer takes more than 3 seconds: give up a little before.
ACT_TIMEOUT_SECONDS = 2.5
NOT_IN_ROSTER = (
    "You are not in Tocsin's roster, so Tocsin cannot act for you. Ask whoever keeps the escalation policy to "
    "add your Slack member id (`slack:` in the roster)."
)
FORM = "application/x-www-form-urlencoded"


class _Refused(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message


def _problem(status: int, reason: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(Problem(reason=reason, message=message).model_dump(exclude_none=True), status, headers)


SlackMessage = dict[str, Any]


def ephemeral(text: str) -> SlackMessage:
    """Only the person who clicked or typed sees it; the message clicked in stays as it was."""
    return {"response_type": "ephemeral", "replace_original": False, "text": text}


async def _read(request: Request, limit: int) -> bytes:
    too_large = _Refused(413, "too_large", f"body: larger than {limit} bytes")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise too_large
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_large
            chunks.append(chunk)
    except ClientDisconnect:
        raise _Refused(400, "disconnected", "the client went away before sending the whole body") from None
    return b"".join(chunks)


def _said(action: SlackAction, person: str, outcome: ActOutcome) -> str:
    """One line of Tocsin's mrkdwn: the incident, what it answered, its status, and who via Slack."""
    return (
        f"*{slack_text(outcome.key)}*: {slack_text(outcome.message)} · status *{slack_text(outcome.status)}* "
        f"· {slack_text(person)} (<@{action.user_id}>) via Slack"
    )


def add_slack_routes(app: FastAPI, responders: Responders) -> None:
    config = getattr(app.state, "config", None)
    limit = config.max_bytes if config is not None else DEFAULT_MAX_BYTES

    answers = ResponseUrls(responders.secrets.slack_api_url)

    async def verified(request: Request, parse: Callable[[bytes], SlackAction]) -> SlackAction | Response:
        """The request's action, once it is provably Slack's; or the answer that refuses it."""
        secret = responders.secrets.slack_signing_secret
        if secret is None:
            return not_configured("Slack", SLACK_SECRET)
        try:
            body = await _read(request, limit)
            headers = request.headers
            try:
                verify(
                    secret.get_secret_value(),
                    headers.get(TIMESTAMP_HEADER),
                    headers.get(SIGNATURE_HEADER),
                    body,
                    responders.clock(),
                )
            except SlackSignatureError as err:
                raise _Refused(401, "unauthorized", str(err)) from None
            mime = headers.get("content-type", "").partition(";")[0].strip().lower()
            if mime != FORM:
                raise _Refused(415, "unsupported_media_type", f"Content-Type must be {FORM}")
            try:
                action = parse(body)
            except SlackRequestError as err:
                raise _Refused(400, "invalid_payload", str(err)) from None
        except CommandUsageError as err:
            return JSONResponse(ephemeral(slack_text(str(err))))
        except _Refused as refused:
            client = request.client.host if request.client else "?"
            log.info("slack: refused a post from %s (%d %s): %s", client, refused.status, refused.reason, refused)
            return _problem(refused.status, refused.reason, refused.message)
        return action

    async def act_for(action: SlackAction) -> SlackMessage | Response:
        """What to tell the person (a Slack message), or the HTTP error that ends the request."""
        person = person_for(responders.roster, "slack", action.user_id)
        if person is None:
            log.warning("slack: %s is not in the roster; their %s was not acted on", action.user_id, action.verb)
            return ephemeral(NOT_IN_ROSTER)
        try:
            async with asyncio.timeout(ACT_TIMEOUT_SECONDS):
                outcome = await responders.act(action.inbound(person))
        except ValidationError as err:
            return _problem(400, "invalid_payload", f"not an action Tocsin can take: {err.error_count()} errors")
        except NotActed as err:
            log.info("slack: %s by %s (%s) not done: %s", action.verb, person, action.user_id, err.reason)
            return ephemeral(f"Nothing done: {slack_text(err.reason)}")
        except (TemporalUnavailable, TimeoutError) as err:
            detail = str(err) or type(err).__name__
            log.warning("slack: %s by %s not done, Temporal unavailable: %s", action.verb, person, detail)
            message = "Temporal did not answer; nothing is known to be done. Try again."
            return _problem(503, "temporal_unavailable", message, {"Retry-After": str(RETRY_AFTER_SECONDS)})
        except RPCError as err:
            log.warning("slack: %s by %s refused by Temporal (%s): %s", action.verb, person, err.status.name, err)
            return ephemeral("Temporal refused this action; nothing was done. The receiver's log says why.")
        log.info("slack: %s of %s by %s (%s): %s", action.verb, outcome.key, person, action.user_id, outcome.message)
        said = _said(action, person, outcome)
        if action.button:
            return acted_content(action.original, outcome.key, outcome.status, said, action.event_id)
        return {"response_type": "in_channel", "text": said}

    async def actions(request: Request) -> Response:
        action = await verified(request, parse_action)
        if isinstance(action, Response):
            return action
        # Checked before acting: a click that could only be answered on another host is not acted on at all.
        target = answers.allowed(action.response_url)
        if target is None:
            return _problem(400, "invalid_payload", "payload.response_url: not an address of Slack's")
        answer = await act_for(action)
        if isinstance(answer, Response):
            return answer
        # Starlette runs the task once the empty 200 is sent: Slack's three seconds are not spent on the POST.
        return Response(status_code=200, background=BackgroundTask(answers.post, target, answer))

    async def commands(request: Request) -> Response:
        action = await verified(request, parse_command)
        if isinstance(action, Response):
            return action
        answer = await act_for(action)
        return answer if isinstance(answer, Response) else JSONResponse(answer)

    signed = "Verified by X-Slack-Signature (TOCSIN_SLACK_SIGNING_SECRET); 404 while that is unset."
    app.add_api_route(
        ACTIONS_PATH,
        actions,
        methods=["POST"],
        summary="Slack interactivity: a click on an incident's buttons",
        description=signed,
        operation_id="post_slack_actions",
    )
    app.add_api_route(
        COMMANDS_PATH,
        commands,
        methods=["POST"],
        summary="Slack slash command: /tocsin ack|escalate|resolve|snooze|take [KEY or code]",
        description=signed,
        operation_id="post_slack_commands",
    )
