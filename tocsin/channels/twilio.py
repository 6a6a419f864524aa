"""SMS and voice calls through Twilio's REST API (2010-04-01): the `sms` and `phone` channels.

Configuration (each may instead be read from the file `NAME_FILE` names): `TOCSIN_TWILIO_ACCOUNT_SID`,
`TOCSIN_TWILIO_AUTH_TOKEN`, `TOCSIN_TWILIO_FROM` (a Twilio number in E.164), and `TOCSIN_TWILIO_API_URL`
(default https://api.twilio.com) to point it at a compatible server or a test one.

- SMS: `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`, form-encoded `To`, `From`, `Body`.
- Voice: `POST /2010-04-01/Accounts/{AccountSid}/Calls.json`, form-encoded `To`, `From`, `Twiml`
  (`<Response><Say>…</Say></Response>`, the text XML-escaped by tocsin.channels.escaping.xml_text). With
  `TOCSIN_PUBLIC_URL` set (the receiver's address as Twilio sees it), the call gathers one digit instead:
  `<Gather numDigits="1" action="{TOCSIN_PUBLIC_URL}/api/v1/twilio/voice?key=<incident key>">`, press 1 to
  acknowledge, 2 to escalate (tocsin/receiver/twilio_routes.py takes the digit).
- Both authenticate with HTTP basic auth (Account SID : Auth Token); the receipt is the resource's `sid`.

Idempotency: Twilio's REST API documents no idempotency key for creating messages or calls. Every request
carries `I-Twilio-Idempotency-Token: <idempotency key>` (the header Twilio itself sends on webhooks; a
proxy or a future API may honour it, Twilio ignores it today), so a retry after a lost response can still
send a second SMS or place a second call.

Errors: Twilio answers `{"code", "message", "more_info", "status"}`. 400 (e.g. 21211, an invalid `To`), 401
and 404 are permanent; 429 (with Retry-After when given) and 5xx retry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self

import httpx

from tocsin.channels import _http
from tocsin.channels.base import Message, PermanentDeliveryError, Receipt
from tocsin.channels.escaping import fit, plain_text, xml_text
from tocsin.channels.vendor_settings import http_url, setting
from tocsin.responders.twilio import gather_twiml, voice_action

VENDOR = "twilio"
DEFAULT_API_URL = "https://api.twilio.com"
API_VERSION = "2010-04-01"
SMS_MAX_CHARS = 1600  # Twilio's limit on Body
TWIML_MAX_CHARS = 4000  # Twilio's limit on Twiml
IDEMPOTENCY_HEADER = "I-Twilio-Idempotency-Token"
PUBLIC_URL = "TOCSIN_PUBLIC_URL"


class _Twilio:
    """What SMS and voice share: the account, its credentials, one request shape and one error reading."""

    name: str
    resource: ClassVar[str]
    # Twilio's default for a long code: 1 SMS per second per sending number, and 1 call per second (CPS)
    # per account. One adapter has one number and one account, so the whole channel is one pacing key.
    min_interval: ClassVar[float] = 1.0

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        sender: str,
        api_url: str = DEFAULT_API_URL,
        *,
        public_url: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not account_sid or not auth_token or not sender:
            raise PermanentDeliveryError(f"{VENDOR}: account SID, auth token and sender number are all required")
        self.account_sid = account_sid
        self._auth = httpx.BasicAuth(account_sid, auth_token)
        self.sender = sender
        self.api_url = api_url.rstrip("/")
        # The receiver as Twilio reaches it: where a call's digit is posted. None: calls only speak.
        self.public_url = public_url.rstrip("/") if public_url else None
        self._transport = transport

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.api_url}, account={self.account_sid}, from={self.sender})"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Self | None:
        """None when none of the Twilio variables is set; PermanentDeliveryError when only some are."""
        names = ("TOCSIN_TWILIO_ACCOUNT_SID", "TOCSIN_TWILIO_AUTH_TOKEN", "TOCSIN_TWILIO_FROM")
        values = {name: setting(env, name) for name in names}
        if not any(values.values()):
            return None
        missing = [name for name, value in values.items() if not value]
        if missing:
            raise PermanentDeliveryError(f"{VENDOR}: {', '.join(missing)} not set (the other Twilio settings are)")
        sid, token, sender = (values[name] or "" for name in names)
        api_url = http_url(env.get("TOCSIN_TWILIO_API_URL") or DEFAULT_API_URL, "TOCSIN_TWILIO_API_URL")
        public = (env.get(PUBLIC_URL) or "").strip()
        return cls(sid, token, sender, api_url, public_url=http_url(public, PUBLIC_URL) if public else None)

    def form(self, message: Message) -> dict[str, str]:
        raise NotImplementedError

    async def send(self, message: Message) -> Receipt:
        if not message.target.strip():
            raise PermanentDeliveryError(f"{self.name}: no phone number to send to")
        form = {"To": message.target.strip(), "From": self.sender, **self.form(message)}
        async with self._client() as http:
            response = await _http.send(
                VENDOR,
                http.post(
                    f"/{API_VERSION}/Accounts/{self.account_sid}/{self.resource}",
                    data=form,
                    headers={IDEMPOTENCY_HEADER: message.idempotency_key},
                ),
            )
        _raise_for_twilio(response)
        sid = _json(response).get("sid")
        if not isinstance(sid, str) or not sid:
            raise PermanentDeliveryError(f"{VENDOR} answered {response.status_code} without a sid")
        return Receipt(provider_id=sid)

    async def check(self) -> str:
        """GET the account: proves the SID and token without sending anything."""
        async with self._client() as http:
            response = await _http.send(VENDOR, http.get(f"/{API_VERSION}/Accounts/{self.account_sid}.json"))
        _raise_for_twilio(response)
        account = _json(response)
        status = str(account.get("status") or "unknown")
        if status != "active":
            raise PermanentDeliveryError(f"{VENDOR}: account is {status}, not active")
        label = account.get("friendly_name") or self.account_sid
        return f"{VENDOR}: account {label} active, {self.name} from {self.sender}"

    def _client(self) -> httpx.AsyncClient:
        return _http.client(
            self.api_url, transport=self._transport, auth=self._auth, headers={"Accept": "application/json"}
        )


class TwilioSms(_Twilio):
    """The `sms` channel."""

    name = "sms"
    resource = "Messages.json"

    def form(self, message: Message) -> dict[str, str]:
        # Control characters stripped: an SMS shows text only (an ESC sequence would arrive as garbage).
        return {"Body": fit(plain_text(message.text.strip() or message.title), SMS_MAX_CHARS)}


class TwilioVoice(_Twilio):
    """The `phone` channel: a call that reads the message out."""

    name = "phone"
    resource = "Calls.json"

    def form(self, message: Message) -> dict[str, str]:
        text = message.text.strip() or message.title
        if self.public_url is None:
            return {"Twiml": twiml(text)}
        return {"Twiml": gather(text, voice_action(self.public_url, message.incident))}


def twiml(text: str) -> str:
    """TwiML that says `text` (control characters gone, `&<>` escaped), cut so the whole document stays within
    Twilio's 4000 characters. Nothing in the text can open an element (a `<Play>`, a `<Dial>`)."""
    budget = TWIML_MAX_CHARS - len("<Response><Say></Say></Response>")
    return f"<Response><Say>{fit(text, budget, xml_text)}</Say></Response>"


def gather(text: str, action: str) -> str:
    """TwiML that says `text` and the keypad prompt while gathering one digit for `action`, cut to Twilio's 4000
    characters as a whole (the cut falls in the text, never in the markup or the action URL)."""
    return fit(plain_text(text), TWIML_MAX_CHARS, lambda said: gather_twiml(said, action))


def _raise_for_twilio(response: httpx.Response) -> None:
    if response.is_success:
        return
    body = _json(response)
    code, text = body.get("code"), body.get("message")
    detail = " ".join(str(part) for part in (code, text) if part)
    _http.raise_for_vendor(VENDOR, response, detail[:300])


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
