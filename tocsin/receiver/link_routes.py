"""`/api/v1/actions/{token}`: the signed links in page emails (tocsin.responders.links), for a person's browser.

GET only shows what the link would do (which incident, which action, as whom) and a button: it acts on
nothing, so a mail scanner or a client that prefetches links cannot acknowledge anything. POST verifies the
link again and acts, as the signed person, via email. In order, for both:

- TOCSIN_ACTION_LINK_SECRET unset → 404 naming it (tocsin.receiver.responder_settings.not_configured);
- a link that is not one of ours → 400, altered or signed with another secret → 403, expired → 403;
- its person no longer in the roster → 403;
- POST only: the incident refuses (already resolved and closed) → 409, no such incident → 404; Temporal
  unreachable → 503 with Retry-After (the only 5xx a person may simply retry), anything else → 500.

Every answer is a small HTML page: escaped, no script, no external asset, never cached (`no-store`), never
sent on as a Referer (the URL is the credential), and never framed (a hidden button must not be clicked).
The token never reaches a log line or a page; the person and the incident key do (neither is secret).
"""

from __future__ import annotations

import html
import logging
from datetime import UTC, datetime

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response

from tocsin.intake.contracts import TemporalUnavailable
from tocsin.receiver.gate import RETRY_AFTER_SECONDS
from tocsin.receiver.responder_settings import LINK_SECRET, Responders, not_configured
from tocsin.responders.contracts import ActOutcome, InboundAction, NotActed
from tocsin.responders.links import ACTIONS_PATH, LinkClaims, LinkRefused, event_id, verify

log = logging.getLogger("tocsin.receiver.links")

PATH = ACTIONS_PATH + "{token}"
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
}
REMEMBERED_LINKS = 4096
REFUSAL_STATUS = {"malformed": 400, "altered": 403, "expired": 403}
NOT_ACTED_STATUS = {"unknown_person": 403, "no_incident": 404, "refused": 409}
WHAT_IT_DOES = {
    "acknowledge": "Paging stops, and you become the incident's owner if it has none.",
    "escalate": "The next level of the escalation chain is paged now.",
    "resolve": "The incident is resolved and closed.",
}
_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;line-height:1.5}"
    "button{font-size:1.1rem;padding:.6rem 1.6rem;cursor:pointer}code{font-size:1.05em}"
)


def page(status: int, title: str, *paragraphs: str, form: str = "") -> HTMLResponse:
    """A whole page; `title` and `paragraphs` are escaped here, `form` is markup built from escaped parts."""
    body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    document = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="robots" content="noindex, nofollow"><title>{html.escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>{body}{form}</body></html>\n"
    )
    return HTMLResponse(document, status_code=status, headers=HEADERS)


def _until(expires: int) -> str:
    return datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%d %H:%M UTC")


def add_link_routes(app: FastAPI, responders: Responders) -> None:
    secret = responders.secrets.action_link_secret
    # Links this receiver has acted on, so a second use can say it was already done. Only a courtesy: another
    # replica, or this one after a restart, sends the same update again and the incident acts on it once.
    used: dict[str, ActOutcome] = {}

    def checked(token: str, method: str) -> LinkClaims | Response:
        """The link's claims, or the page that refuses it; the log says why, never with the token."""
        if secret is None:
            return not_configured("Email links", LINK_SECRET, headers=HEADERS)
        try:
            claims = verify(secret.get_secret_value(), token, responders.clock())
        except LinkRefused as refused:
            log.warning("email link %s: refused (%s); nothing acted on", method, refused.kind)
            return page(REFUSAL_STATUS[refused.kind], "This link cannot be used", refused.message, "Nothing was done.")
        if claims.person not in responders.roster.people:
            log.warning("email link %s: %s is not in the roster; nothing acted on", method, claims.person)
            return page(403, "Not in the roster", f"{claims.person} is not in the roster.", "Nothing was done.")
        return claims

    def as_whom(person: str) -> str:
        name = responders.roster.people[person].name
        return f"{name} ({person})" if name else person

    @app.get(PATH, summary="An email action link: a confirmation page, acting on nothing", response_class=HTMLResponse)
    async def confirm(token: str) -> Response:
        claims = checked(token, "GET")
        if not isinstance(claims, LinkClaims):
            return claims
        verb = claims.verb
        button = html.escape(f"{verb.capitalize()} as {claims.person}")
        # No action attribute: the form posts to this very URL, token included, wherever the receiver is mounted.
        form = f'<form method="post"><button type="submit">{button}</button></form>'
        return page(
            200,
            f"{verb.capitalize()} incident {claims.key}?",
            f"You are about to {verb} incident {claims.key} as {as_whom(claims.person)}.",
            WHAT_IT_DOES[verb],
            f"Nothing happens until you press the button. This link works until {_until(claims.expires)}.",
            form=form,
        )

    @app.post(PATH, summary="An email action link, confirmed: act as the signed person", response_class=HTMLResponse)
    async def act(token: str) -> Response:
        claims = checked(token, "POST")
        if not isinstance(claims, LinkClaims):
            return claims
        # The event id is the token's hash: the same link used again is the same update, acted on once.
        action = InboundAction(
            vendor="email", verb=claims.verb, person=claims.person, event_id=event_id(token), key=claims.key
        )
        earlier = used.get(action.event_id)
        if earlier is not None:
            log.info("email link: %s as %s on %s: used again; not acted", claims.verb, claims.person, claims.key)
            return page(200, "Already done", f"This link was used before: {earlier.message}.", "Nothing more was done.")
        try:
            outcome = await responders.act(action)
        except NotActed as err:
            log.info("email link: %s as %s on %s: not acted: %s", claims.verb, claims.person, claims.key, err.reason)
            return page(NOT_ACTED_STATUS[err.kind], "Nothing was done", err.reason)
        except TemporalUnavailable as err:
            log.warning("email link: %s on %s: Temporal unavailable: %s", claims.verb, claims.key, err)
            response = page(
                503,
                "Try again in a moment",
                "Tocsin could not reach its workflow engine, so the action may not have been taken.",
                "Go back and press the button again in a minute: however often it is pressed, it acts once.",
            )
            response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
            return response
        except Exception:
            log.exception("email link: %s as %s on %s failed", claims.verb, claims.person, claims.key)
            return page(
                500,
                "Something went wrong",
                f"It is not certain whether incident {claims.key} was changed: check it before trying again.",
                "The receiver's log says what failed.",
            )
        log.info("email link: %s as %s on %s: %s", claims.verb, claims.person, claims.key, outcome.message)
        used[action.event_id] = outcome
        while len(used) > REMEMBERED_LINKS:
            used.pop(next(iter(used)))
        return page(
            200,
            f"Incident {outcome.key}: {outcome.status}",
            f"{outcome.message[:1].upper()}{outcome.message[1:]}.",
            "This link has now been used: using it again changes nothing.",
        )
