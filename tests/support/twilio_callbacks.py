"""Twilio's webhooks as Twilio sends them: form-encoded, signed (X-Twilio-Signature) over the public URL the
receiver was configured with, to a receiver app in process. Shared by the unit and workflow tests of the Twilio
responder (tests/unit/test_twilio_responder.py, tests/workflows/test_twilio_acknowledges.py)."""

from __future__ import annotations

from urllib.parse import urlencode

import httpx

from tocsin.intake.contracts import IngestResult, NormalizedAlert
from tocsin.receiver.app import create_app
from tocsin.receiver.responder_settings import Responders
from tocsin.responders.twilio import SIGNATURE_HEADER, SMS_PATH, VOICE_PATH, signature

TOKEN = "twilio-responder-token-6c1f"
PUBLIC = "https://tocsin.example.com/ops"
TOCSIN_NUMBER = "+15005550006"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def receiver(responders: Responders) -> httpx.AsyncClient:
    """The receiver with these responders, reached in process (a loopback name, as an open receiver wants)."""

    async def no_ingest(alerts: list[NormalizedAlert]) -> IngestResult:
        raise AssertionError("no alert is posted here")

    async def healthy() -> bool:
        return True

    app = create_app(ingest=no_ingest, healthcheck=healthy, responders=responders)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8080")


class TwilioWebhooks:
    """Posts as Twilio does. `url` overrides the URL signed (to sign another one than the one posted to)."""

    def __init__(self, http: httpx.AsyncClient, token: str = TOKEN, public: str = PUBLIC) -> None:
        self.http, self.token, self.public = http, token, public

    async def post(
        self, path: str, params: dict[str, str], query: str = "", *, token: str | None = None, url: str | None = None
    ) -> httpx.Response:
        signed = url or f"{self.public}{path}" + (f"?{query}" if query else "")
        headers = {SIGNATURE_HEADER: signature(token or self.token, signed, params.items()), **FORM}
        target = path + (f"?{query}" if query else "")
        return await self.http.post(target, content=urlencode(params), headers=headers)

    async def sms(self, sender: str, body: str, sid: str = "SM5f2a0c", **kw: str) -> httpx.Response:
        """A text from `sender` to Tocsin's number (the number's messaging webhook)."""
        params = {"MessageSid": sid, "SmsSid": sid, "From": sender, "To": TOCSIN_NUMBER, "Body": body}
        return await self.post(SMS_PATH, params, **kw)

    async def digit(self, key: str | None, digits: str, callee: str, call: str = "CA9e1d") -> httpx.Response:
        """The digit pressed on a page call Tocsin placed to `callee` (the Gather's action, `?key=` in it)."""
        params = {"CallSid": call, "From": TOCSIN_NUMBER, "To": callee, "Direction": "outbound-api"}
        params |= {"Digits": digits} if digits else {}
        return await self.post(VOICE_PATH, params, urlencode({"key": key}) if key else "")
