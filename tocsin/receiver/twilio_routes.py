"""`POST /api/v1/twilio/sms` and `POST /api/v1/twilio/voice`: SMS replies and the digits of a page call.

Each request, in this order: both `TOCSIN_TWILIO_AUTH_TOKEN` and `TOCSIN_PUBLIC_URL` set (else 404, naming the
variable), a form-encoded body of at most 64 KiB (415, 413), `X-Twilio-Signature` over TOCSIN_PUBLIC_URL + the
path + the query as Twilio called it (403, Twilio's convention; nothing acted), then the person: the roster's
`phone:` that matches the number (an unknown number is told so and logged, nothing acted). Only then `act`.

SMS: `ACK`, `ESC`, `RES`, optionally with the page's code, act on that code's incident or the person's latest
page; the event id is the MessageSid, so a webhook Twilio sends again lands once. Voice: the page call's TwiML
posts one digit here with `?key=<incident>` (tocsin/channels/twilio.py); 1 acknowledges, 2 escalates, the
event id is CallSid-digit. A call the person places to the number (no key) acts on their latest page.

Every answer is TwiML (`text/xml`): what happened, or why not. 503 only when Temporal is unreachable.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from urllib.parse import parse_qs, parse_qsl

from fastapi import FastAPI, Request, Response
from pydantic import ValidationError
from starlette.requests import ClientDisconnect

from tocsin.intake.contracts import TemporalUnavailable
from tocsin.receiver.responder_settings import PUBLIC_URL, TWILIO_TOKEN, Responders, not_configured
from tocsin.responders.contracts import InboundAction, NotActed, Verb
from tocsin.responders.identity import person_for
from tocsin.responders.twilio import (
    DIGIT_VERBS,
    HELP,
    NOT_IN_ROSTER,
    SIGNATURE_HEADER,
    SMS_PATH,
    VOICE_PATH,
    VOICE_PROMPT,
    answering_number,
    gather_twiml,
    message_twiml,
    parse_sms,
    say_twiml,
    signature_valid,
    signed_url,
)

log = logging.getLogger("tocsin.receiver")

MAX_BODY = 64 * 1024  # Twilio's webhooks are a few hundred bytes; an SMS body is at most 1600 characters
# Twilio gives up on a webhook after 15 s: answer before it does, even when no worker runs the update.
ACT_TIMEOUT = 12.0
RETRY_AFTER = "5"
FORM = "application/x-www-form-urlencoded"
UNREACHABLE = "Tocsin cannot reach its incidents right now; nothing was done. Try again shortly."
TIMED_OUT = "Tocsin got no answer from the incident in time. It may still apply: check before trying again."


class Refused(Exception):
    """An answer that ends the request early (refused, or the incident could not be reached): a status and its
    TwiML."""

    def __init__(self, status: int, twiml: str = "<Response/>", headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.twiml = twiml
        self.headers = headers


def xml(twiml: str, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(twiml, status_code=status, media_type="text/xml", headers=headers)


def add_twilio_routes(app: FastAPI, responders: Responders) -> None:
    secrets = responders.secrets

    async def verified(request: Request, path: str) -> tuple[dict[str, str], str]:
        """The form's parameters and the raw query, once the signature holds."""
        token, public = secrets.twilio_auth_token, secrets.public_url
        assert token is not None and public is not None  # checked by each route first
        if (request.headers.get("content-type") or "").split(";")[0].strip().lower() != FORM:
            raise Refused(415)
        body = await _bounded_body(request)
        query = request.scope.get("query_string", b"").decode("latin-1")
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            raise Refused(400) from None
        url = signed_url(public, path, query)
        if not signature_valid(token.get_secret_value(), url, pairs, request.headers.get(SIGNATURE_HEADER)):
            client = request.client.host if request.client else "?"
            log.warning("twilio %s: refused a post from %s: bad or missing %s", path, client, SIGNATURE_HEADER)
            raise Refused(403)
        return dict(pairs), query

    def unconfigured() -> Response | None:
        if secrets.twilio_auth_token is None:
            return not_configured("Twilio", TWILIO_TOKEN)
        if secrets.public_url is None:
            return not_configured("Twilio", PUBLIC_URL, from_file=False)
        return None

    def person(number: str, path: str) -> str:
        found = person_for(responders.roster, "phone", number)
        if found is None:
            # The number's last digits only: enough to recognise it, without writing people's numbers to logs.
            log.warning("twilio %s: refused a number not in the roster (ending %s)", path, number[-4:] or "?")
            raise Refused(200, message_twiml(NOT_IN_ROSTER) if path == SMS_PATH else say_twiml(NOT_IN_ROSTER))
        return found

    async def outcome(action: InboundAction, answer: Callable[[str], str]) -> str:
        """What to tell the person: what the incident answered, or why nothing changed. `answer` makes TwiML
        of a failure that ends the request (a `<Say>` for a call, a `<Message>` for a text)."""
        try:
            async with asyncio.timeout(ACT_TIMEOUT):
                done = await responders.act(action)
        except NotActed as err:
            return f"Not done: {err.reason}"
        except TimeoutError:
            log.warning("twilio: %s by %s timed out waiting for the incident", action.verb, action.person)
            raise Refused(503, answer(TIMED_OUT), {"Retry-After": RETRY_AFTER}) from None
        except TemporalUnavailable as err:
            log.warning("twilio: %s by %s: Temporal unreachable: %s", action.verb, action.person, err)
            raise Refused(503, answer(UNREACHABLE), {"Retry-After": RETRY_AFTER}) from None
        except Exception:
            log.exception("twilio: %s by %s failed", action.verb, action.person)
            raise Refused(500) from None
        return f"{done.key}: {done.message}"

    @app.post(SMS_PATH, summary="Twilio SMS webhook: ACK, ESC or RES replies (TwiML)", response_class=Response)
    async def sms(request: Request) -> Response:
        if (off := unconfigured()) is not None:
            return off
        try:
            params, _ = await verified(request, SMS_PATH)
            sid = _sid(params, "MessageSid")
            who = person(params.get("From", ""), SMS_PATH)
            reply = parse_sms(params.get("Body", ""))
            if reply is None:
                return xml(message_twiml(HELP))
            action = _action(reply.verb, who, sid, code=reply.code)
            return xml(message_twiml(await outcome(action, message_twiml)))
        except Refused as refused:
            return xml(refused.twiml, refused.status, refused.headers)

    @app.post(
        VOICE_PATH, summary="Twilio voice webhook: the page call's digit, 1 or 2 (TwiML)", response_class=Response
    )
    async def voice(request: Request) -> Response:
        if (off := unconfigured()) is not None:
            return off
        try:
            params, query = await verified(request, VOICE_PATH)
            call = _sid(params, "CallSid")
            key = next(iter(parse_qs(query).get("key", [])), None)
            who = person(answering_number(params), VOICE_PATH)
            digit = params.get("Digits", "")
            verb = DIGIT_VERBS.get(digit)
            if verb is None:
                # No digit yet (the person called the number) or another key: ask, and come back here.
                assert secrets.public_url is not None
                again = signed_url(secrets.public_url, VOICE_PATH, query)
                text = "" if not digit else "Sorry, that key does nothing here."
                prompt = VOICE_PROMPT if key else "Press 1 to acknowledge your latest page, 2 to escalate it."
                return xml(gather_twiml(text, again, prompt))
            action = _action(verb, who, f"{call}-{digit}", key=key)
            return xml(say_twiml(f"{await outcome(action, say_twiml)}. Goodbye."))
        except Refused as refused:
            return xml(refused.twiml, refused.status, refused.headers)


def _sid(params: dict[str, str], name: str) -> str:
    sid = params.get(name, "")
    if not sid or len(sid) > 64:
        raise Refused(400)
    return sid


def _action(
    verb: Verb, person: str, event_id: str, *, key: str | None = None, code: str | None = None
) -> InboundAction:
    try:
        return InboundAction(vendor="twilio", verb=verb, person=person, event_id=event_id, key=key, code=code)
    except ValidationError:
        raise Refused(400) from None  # a key longer than any incident's: not a URL Tocsin made


async def _bounded_body(request: Request) -> bytes:
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BODY:
        raise Refused(413)
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY:
                raise Refused(413)
            chunks.append(chunk)
    except ClientDisconnect:
        raise Refused(400) from None
    return b"".join(chunks)
