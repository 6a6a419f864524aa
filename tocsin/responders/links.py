"""Signed action links for page emails: "Acknowledge", "Escalate", "Resolve" as URLs that act as one person.

A token is `<payload>.<signature>`, both base64url without padding. The payload is the JSON array
`[incident key, verb, person, expiry (Unix seconds)]`; the signature is HMAC-SHA256 with
TOCSIN_ACTION_LINK_SECRET over exactly those payload bytes. Nothing else is in the token and nothing is kept
on the server: the receiver checks the signature (in constant time), then the expiry, then that the person is
still in the roster.

One-time: the dispatch event id is a hash of the whole token, and the update id is `email:<that hash>`, so the
second use of a link is the same update as the first and the incident answers it without acting again.
Links expire DEFAULT_TTL (24 hours) after the page was sent: long enough for a night's pages to be acted on
from the inbox in the morning, short enough that an old mail found in an archive cannot act. The worker may
set TOCSIN_ACTION_LINK_TTL between MIN_TTL and MAX_TTL.

Pure: no clock (callers pass `now`), no I/O.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, get_args

from tocsin.addresses import is_http_url
from tocsin.durations import format_duration, parse_duration
from tocsin.incident.contracts import incident_workflow_id
from tocsin.policy.roster_schema import Roster
from tocsin.responders.identity import person_for

LinkVerb = Literal["acknowledge", "escalate", "resolve"]
LINK_VERBS: tuple[LinkVerb, ...] = get_args(LinkVerb)
LABELS: dict[LinkVerb, str] = {"acknowledge": "Acknowledge", "escalate": "Escalate", "resolve": "Resolve"}
ACTIONS_PATH = "/api/v1/actions/"

DEFAULT_TTL = timedelta(hours=24)
MIN_TTL = timedelta(minutes=5)
MAX_TTL = timedelta(days=7)
# Far above a real token (~300 characters): anything longer is refused before any decoding.
MAX_TOKEN = 1024
_SIGNATURE_BYTES = 32
# The steps of an incident whose deliveries are pages to a person (workflows/incident/escalation.py): only
# those carry links. Notices to stakeholders and managers inform; they do not ask anyone to act.
PAGE_STEPS = ("page/", "ack-timeout/")
_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")

Refusal = Literal["malformed", "altered", "expired"]


@dataclass(frozen=True)
class LinkClaims:
    """What a verified link says: act on incident `key` with `verb`, as roster person `person`, until `expires`."""

    key: str
    verb: LinkVerb
    person: str
    expires: int


class LinkRefused(Exception):
    """A link that must not act, and why: `malformed` (not a token of ours), `altered` (the signature does not
    match: changed, or signed with another secret) or `expired`. The message is fit for the person and never
    repeats the token."""

    def __init__(self, kind: Refusal, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    """Strict base64url: only the canonical spelling of some bytes, so no second spelling of one link exists
    (it would hash to another event id and no longer be the same update)."""
    if not text or any(c not in _ALPHABET for c in text):
        raise ValueError("not base64url")
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64encode(raw) != text:
        raise ValueError("not canonical base64url")
    return raw


def _mac(secret: str, payload: bytes) -> bytes:
    return hmac.new(secret.encode("utf-8"), payload, hashlib.sha256).digest()


def sign(secret: str, key: str, verb: LinkVerb, person: str, expires: int) -> str:
    """The token for one action by one person on one incident, valid until `expires` (Unix seconds)."""
    if not secret:
        raise ValueError("an action link needs a secret")
    if verb not in LINK_VERBS:
        raise ValueError(f"an action link cannot {verb}")
    payload = json.dumps([key, verb, person, int(expires)], separators=(",", ":")).encode("utf-8")
    return f"{_b64encode(payload)}.{_b64encode(_mac(secret, payload))}"


def verify(secret: str, token: str, now: float) -> LinkClaims:
    """The claims of a token signed with `secret` and not expired at `now`, or LinkRefused saying why."""
    malformed = LinkRefused("malformed", "This is not a Tocsin action link (it may have been cut short).")
    if len(token) > MAX_TOKEN or token.count(".") != 1:
        raise malformed
    encoded, signature_text = token.split(".")
    try:
        payload, signature = _b64decode(encoded), _b64decode(signature_text)
    except (ValueError, binascii.Error):
        raise malformed from None
    if len(signature) != _SIGNATURE_BYTES:
        raise malformed
    # The signature first, compared in constant time: nothing in an unsigned payload is looked at.
    if not hmac.compare_digest(signature, _mac(secret, payload)):
        raise LinkRefused("altered", "This link has been altered, or was not signed by this Tocsin.")
    try:
        key, verb, person, expires = json.loads(payload)
    except (ValueError, TypeError):
        raise malformed from None
    if not (isinstance(key, str) and isinstance(person, str) and verb in LINK_VERBS and type(expires) is int):
        raise malformed
    if now >= expires:
        raise LinkRefused("expired", "This link has expired. Act from a newer page, or with `tocsin ack`.")
    return LinkClaims(key=key, verb=verb, person=person, expires=expires)


def event_id(token: str) -> str:
    """The dispatch event id of a link: the same token, the same id, so a second use is the same update."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()[:40]


def link_ttl(text: str | None) -> timedelta:
    """TOCSIN_ACTION_LINK_TTL ("12h", "2 days"); DEFAULT_TTL when unset. ValueError names the bounds."""
    if not text or not text.strip():
        return DEFAULT_TTL
    ttl = parse_duration(text)
    if not MIN_TTL <= ttl <= MAX_TTL:
        raise ValueError(f"must be between {format_duration(MIN_TTL)} and {format_duration(MAX_TTL)}")
    return ttl


def is_page(key: str, idempotency_key: str) -> bool:
    """Whether a delivery of incident `key` is a page, from its idempotency key `<workflow id>/<run>/<step>`."""
    prefix = incident_workflow_id(key) + "/"
    if not idempotency_key.startswith(prefix):
        return False
    return idempotency_key.removeprefix(prefix).partition("/")[2].startswith(PAGE_STEPS)


@dataclass(frozen=True)
class ActionLink:
    verb: LinkVerb
    label: str
    url: str


@dataclass(frozen=True)
class LinkMaker:
    """What a worker needs to put links in a page: the secret, the receiver's public base URL (no trailing
    slash), the roster that says whose address a recipient is, and how long links last."""

    secret: str
    public_url: str
    roster: Roster
    ttl: timedelta = DEFAULT_TTL

    @classmethod
    def configured(cls, secret: str, public_url: str | None, ttl: str | None, roster: Roster) -> LinkMaker:
        """From the worker's settings; ValueError names the variable at fault, never a value of the secret."""
        base = (public_url or "").strip().rstrip("/")
        if not base:
            raise ValueError("TOCSIN_ACTION_LINK_SECRET is set but TOCSIN_PUBLIC_URL is not (links point at it)")
        if not is_http_url(base):
            raise ValueError("TOCSIN_PUBLIC_URL must be an http(s) URL, the receiver's address as people see it")
        try:
            span = link_ttl(ttl)
        except ValueError as err:
            raise ValueError(f"TOCSIN_ACTION_LINK_TTL: {err}") from None
        return cls(secret, base, roster, span)

    def __repr__(self) -> str:
        return f"LinkMaker({self.public_url}, ttl={format_duration(self.ttl)})"

    def links(self, key: str, address: str, issued_at: datetime) -> list[ActionLink]:
        """The links for the roster person whose email is `address`; none for an address the roster does not
        know (nobody to act as). The expiry counts from `issued_at`, the page's own time, so a retried delivery
        carries the same links."""
        person = person_for(self.roster, "email", address)
        if person is None:
            return []
        expires = int(issued_at.timestamp() + self.ttl.total_seconds())
        return [
            ActionLink(
                verb, LABELS[verb], f"{self.public_url}{ACTIONS_PATH}{sign(self.secret, key, verb, person, expires)}"
            )
            for verb in LINK_VERBS
        ]
