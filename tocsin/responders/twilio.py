"""Twilio's side of responding, pure: the request signature, what an SMS reply asks for, and the TwiML answers.

Signature (`X-Twilio-Signature`): base64 of HMAC-SHA1, keyed with the account's auth token, over the full URL
Twilio called (scheme, host, path and query, exactly as configured) followed by every POST parameter's name and
value, sorted by name (case-sensitive, as Unix sorts). It has no timestamp, so a captured request could be sent
again: the update id (`twilio:<MessageSid>`) makes that land once.

Replies: `ACK`, `ESC` or `RES`, in any case, optionally followed by the 4-digit code the page carried
(`ack 4821`); anything else gets the help text. Calls: the page's TwiML gathers one digit, 1 acknowledges and
2 escalates; the digit comes back to the voice route with the incident's key in the action URL's query.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

from tocsin.responders.contracts import Verb

SIGNATURE_HEADER = "X-Twilio-Signature"
SMS_PATH = "/api/v1/twilio/sms"
VOICE_PATH = "/api/v1/twilio/voice"

REPLY_VERBS: dict[str, Verb] = {"ack": "acknowledge", "esc": "escalate", "res": "resolve"}
DIGIT_VERBS: dict[str, Verb] = {"1": "acknowledge", "2": "escalate"}
HELP = "Reply ACK, ESC or RES, optionally with the page's 4-digit code (e.g. ACK 4821)."
VOICE_PROMPT = "Press 1 to acknowledge, 2 to escalate."
NO_DIGIT = "Nothing was pressed. The incident stays as it was. Goodbye."
NOT_IN_ROSTER = "This number is not in Tocsin's roster."
# Twilio's limit on a message body; the answers here are short, but a refusal quotes the incident's words.
MESSAGE_MAX_CHARS = 1600

_REPLY = re.compile(r"^\s*(ack|esc|res)(?:\s+(\d{4}))?\s*$", re.IGNORECASE)
# What XML 1.0 cannot carry at all (most C0 controls, lone surrogates, U+FFFE/U+FFFF): dropped, never escaped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_ENTITIES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_DEFAULT_PORTS = {"https": 443, "http": 80}


def signature(token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """Twilio's signature of a request. A name sent more than once contributes each distinct value, sorted,
    as Twilio's helper libraries compute it."""
    values: dict[str, set[str]] = {}
    for name, value in params:
        values.setdefault(name, set()).add(value)
    signed = url + "".join(name + value for name in sorted(values) for value in sorted(values[name]))
    digest = hmac.new(token.encode("utf-8"), signed.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def signature_valid(token: str, url: str, params: Iterable[tuple[str, str]], header: str | None) -> bool:
    """Whether `header` is Twilio's signature of the request, compared in constant time. The URL is tried
    with and without its scheme's default port (https://host and https://host:443), as Twilio may sign
    either form and its own libraries accept both."""
    if not header or not token:
        return False
    pairs = list(params)
    given = header.strip().encode("ascii", "replace")
    matches = [hmac.compare_digest(signature(token, u, pairs).encode("ascii"), given) for u in _port_variants(url)]
    return any(matches)


def _port_variants(url: str) -> list[str]:
    parts = urlsplit(url)
    default = _DEFAULT_PORTS.get(parts.scheme)
    try:
        port = parts.port
    except ValueError:
        return [url]
    if default is None:
        return [url]
    if port is None:
        return [url, urlunsplit(parts._replace(netloc=f"{parts.netloc}:{default}"))]
    if port == default:
        return [url, urlunsplit(parts._replace(netloc=parts.netloc.rsplit(":", 1)[0]))]
    return [url]


def signed_url(public_url: str, path: str, query: str) -> str:
    """The URL Twilio signed: the public base URL, the route's path and the query exactly as it came."""
    return f"{public_url.rstrip('/')}{path}" + (f"?{query}" if query else "")


def voice_action(public_url: str, key: str) -> str:
    """Where the page call's digit goes: the voice route, with the incident's key (URL-encoded) in the query."""
    return f"{public_url.rstrip('/')}{VOICE_PATH}?key={quote(key, safe='')}"


@dataclass(frozen=True)
class SmsReply:
    verb: Verb
    code: str | None


def parse_sms(body: str) -> SmsReply | None:
    """`ACK`, `esc 4821`...: the verb and the optional code; None for anything else (answered with HELP)."""
    found = _REPLY.match(body)
    if found is None:
        return None
    return SmsReply(verb=REPLY_VERBS[found.group(1).lower()], code=found.group(2))


def answering_number(params: Mapping[str, str]) -> str:
    """The person's number on a voice request: on a call Tocsin placed (Direction outbound-api) Twilio's `From`
    is Tocsin's own number and the person is `To`; on a call the person placed, they are `From`."""
    if params.get("Direction", "").startswith("outbound"):
        return params.get("To", "")
    return params.get("From", "")


def xml_text(value: str) -> str:
    """Character data: what XML cannot carry dropped, `&<>` escaped, so nothing in the text can open an
    element (a `<Dial>`, a `<Redirect>`)."""
    return _NOT_XML.sub("", value).translate(_ENTITIES)


def xml_attribute(value: str) -> str:
    """A double-quoted attribute value (Gather's action URL): as character data, and `"` escaped too."""
    return xml_text(value).replace('"', "&quot;")


def message_twiml(text: str) -> str:
    """An SMS answer: Twilio texts `text` back to the sender."""
    return f"<Response><Message>{xml_text(text[:MESSAGE_MAX_CHARS])}</Message></Response>"


def say_twiml(text: str) -> str:
    """A voice answer: Twilio reads `text` out, then the call ends."""
    return f"<Response><Say>{xml_text(text)}</Say></Response>"


def gather_twiml(text: str, action: str, prompt: str = VOICE_PROMPT) -> str:
    """Read `text` and the prompt while waiting for one digit, which Twilio posts to `action`; with no digit
    the call says so and ends (the chain goes on paging)."""
    said = f"<Say>{xml_text(text)}</Say>" if text.strip() else ""
    return (
        f'<Response><Gather numDigits="1" action="{xml_attribute(action)}" method="POST">'
        f"{said}<Say>{xml_text(prompt)}</Say></Gather>"
        f"<Say>{xml_text(NO_DIGIT)}</Say></Response>"
    )
