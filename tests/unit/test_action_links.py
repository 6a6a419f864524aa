"""Signed email action links (issue #14, item 4): the token (sign, verify, every refusal), the receiver's pages
against a recording fake `act` (GET acts on nothing, POST acts as the signed person, a second use is the same
event), and the email channel putting links in pages for the roster person they go to, and nowhere else."""

from __future__ import annotations

import base64
import email
import email.policy
import hashlib
import hmac
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from temporalio.service import RPCError, RPCStatusCode

from tests.support.channels import message
from tests.support.roster import BASE
from tests.support.roster import ROSTER as ROSTER_POLICY
from tocsin.channels.base import PermanentDeliveryError
from tocsin.channels.smtp import SmtpEmail
from tocsin.channels.smtp_settings import SmtpSettings
from tocsin.intake.contracts import TemporalUnavailable
from tocsin.policy.roster_schema import Roster
from tocsin.receiver.link_routes import add_link_routes
from tocsin.receiver.responder_settings import LINK_SECRET, Responders, ResponderSecrets, not_configured
from tocsin.responders.contracts import ActOutcome, InboundAction, NotActed
from tocsin.responders.links import (
    DEFAULT_TTL,
    LinkClaims,
    LinkMaker,
    LinkRefused,
    event_id,
    is_page,
    link_ttl,
    sign,
    verify,
)

SECRET = "link-secret-for-tests-7c41e0b9d2"
NOW = 1_800_000_000.0
LATER = int(NOW) + 3600
KEY = "checkout-1a2b3c"
ROSTER = Roster.model_validate(
    {
        "people": {
            "alice": {"name": "Alice <Ops> Martin", "timezone": "UTC", "email": "Alice@Example.com"},
            "bob": {"timezone": "UTC", "email": "bob@example.com"},
        }
    }
)


def refusal(token: str, now: float = NOW, secret: str = SECRET) -> str:
    with pytest.raises(LinkRefused) as caught:
        verify(secret, token, now)
    assert not token or token not in str(caught.value)
    return caught.value.kind


def reencoded(token: str, change: dict[int, object]) -> str:
    """The token (or the link's path) with payload fields replaced and the original signature kept."""
    prefix, _, token = token.rpartition("/")
    payload, signature = token.split(".")
    fields = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    for index, value in change.items():
        fields[index] = value
    raw = json.dumps(fields, separators=(",", ":")).encode()
    return (prefix + "/" if prefix else "") + base64.urlsafe_b64encode(raw).rstrip(b"=").decode() + "." + signature


# --- the token ---------------------------------------------------------------------------------------------


def test_a_signed_link_verifies_to_exactly_what_was_signed_until_it_expires() -> None:
    token = sign(SECRET, KEY, "acknowledge", "alice", LATER)
    assert verify(SECRET, token, NOW) == LinkClaims(key=KEY, verb="acknowledge", person="alice", expires=LATER)
    assert verify(SECRET, token, LATER - 0.001).person == "alice"
    assert refusal(token, now=LATER) == "expired"
    assert refusal(token, now=LATER + 86400) == "expired"
    # URL-safe as it stands: no padding, no character a mail client would re-encode.
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
    assert len(sign(SECRET, "k" * 128, "acknowledge", "a" * 40, LATER)) < 400


@pytest.mark.parametrize(
    "change",
    [{0: "checkout-other"}, {1: "resolve"}, {2: "bob"}, {3: LATER + 86400 * 365}],
    ids=["key", "verb", "person", "expiry"],
)
def test_any_altered_field_is_refused_as_altered(change: dict[int, object]) -> None:
    token = sign(SECRET, KEY, "acknowledge", "alice", LATER)
    assert refusal(reencoded(token, change)) == "altered"


def test_an_altered_signature_or_another_secret_is_refused_as_altered() -> None:
    token = sign(SECRET, KEY, "escalate", "alice", LATER)
    payload, signature = token.split(".")
    flipped = ("B" if signature[0] == "A" else "A") + signature[1:]
    assert refusal(f"{payload}.{flipped}") == "altered"
    assert refusal(token, secret=SECRET + "x") == "altered"
    assert refusal(sign("another-secret", KEY, "escalate", "alice", LATER)) == "altered"


@pytest.mark.parametrize(
    "token",
    ["", "abc", "a.b.c", "!!!!.AAAA", "eyJ9.", ".AAAA", "eyJ9.AAAA", "A" * 2000 + ".A"],
    ids=["empty", "no-dot", "two-dots", "not-base64", "no-signature", "no-payload", "short-signature", "huge"],
)
def test_malformed_tokens_are_refused_as_malformed(token: str) -> None:
    assert refusal(token) == "malformed"


def test_a_second_spelling_of_the_same_bytes_is_malformed_not_a_new_link() -> None:
    # 32 signature bytes are 43 base64 characters: the last one carries two unused bits. Another value for them
    # would decode to the same signature but hash to another event id: refused, so one link has one id.
    token = sign(SECRET, KEY, "acknowledge", "alice", LATER)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(token[-1])
    twin = token[:-1] + alphabet[last ^ 1]
    assert refusal(twin) == "malformed"


def test_a_well_signed_payload_that_is_not_ours_is_malformed() -> None:
    # Signed with the right secret but not [key, verb, person, expiry]: only a bug or a leaked secret makes one.
    for fields in ([KEY, "delete", "alice", LATER], [KEY, "acknowledge", "alice"], {"k": 1}, [KEY, "ack", 1, "x"]):
        payload = json.dumps(fields).encode()
        mac = hmac.new(SECRET.encode(), payload, hashlib.sha256).digest()
        b64 = [base64.urlsafe_b64encode(part).rstrip(b"=").decode() for part in (payload, mac)]
        assert refusal(".".join(b64)) == "malformed"
    with pytest.raises(ValueError, match="cannot delete"):
        sign(SECRET, KEY, "delete", "alice", LATER)  # type: ignore[arg-type]


def test_a_link_has_one_event_id_and_each_link_its_own() -> None:
    token = sign(SECRET, KEY, "acknowledge", "alice", LATER)
    assert event_id(token) == event_id(str(token))
    others = {
        sign(SECRET, KEY, "resolve", "alice", LATER),
        sign(SECRET, KEY, "acknowledge", "bob", LATER),
        sign(SECRET, KEY, "acknowledge", "alice", LATER + 1),
    }
    assert len({event_id(t) for t in others} | {event_id(token)}) == 4
    assert len(f"email:{event_id(token)}") <= 200  # the update id's limit


def test_link_lifetime_and_which_deliveries_are_pages() -> None:
    assert link_ttl(None) == link_ttl("") == DEFAULT_TTL == timedelta(hours=24)
    assert link_ttl("2 hours") == timedelta(hours=2)
    for bad in ("1 minute", "30 days", "soon"):
        with pytest.raises(ValueError):
            link_ttl(bad)
    assert is_page(KEY, f"incident-{KEY}/0123abcd/page/0/1")
    assert is_page(KEY, f"incident-{KEY}/0123abcd/ack-timeout/1")
    assert not is_page(KEY, f"incident-{KEY}/0123abcd/management/0")
    assert not is_page(KEY, f"incident-{KEY}/0123abcd/notify/opened/team:executives")
    assert not is_page(KEY, f"incident-{KEY}-2/0123abcd/page/0/1")


# --- the receiver's pages ----------------------------------------------------------------------------------


class FakeAct:
    """Records every action; answers like the incident, or raises what it is told to."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.actions: list[InboundAction] = []
        self.error = error

    async def __call__(self, action: InboundAction) -> ActOutcome:
        if self.error is not None:
            raise self.error
        self.actions.append(action)
        return ActOutcome(key=action.key or "?", status="acknowledged", message=f"acknowledged by {action.person}")


@pytest.fixture
def fake() -> FakeAct:
    return FakeAct()


def app_with(act: FakeAct, secret: str | None = SECRET) -> FastAPI:
    app = FastAPI()
    secrets = ResponderSecrets(action_link_secret=SecretStr(secret) if secret else None, public_url="https://t.io")
    add_link_routes(app, Responders(act=act, roster=ROSTER, secrets=secrets, clock=lambda: NOW))
    return app


@pytest.fixture
async def http(fake: FakeAct) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app_with(fake)), base_url="http://t") as client:
        yield client


def path(verb: str = "acknowledge", person: str = "alice", expires: int = LATER) -> str:
    return "/api/v1/actions/" + sign(SECRET, KEY, verb, person, expires)  # type: ignore[arg-type]


def assert_safe_page(response: httpx.Response) -> None:
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    body = response.text.lower()
    assert "<script" not in body and "http://" not in body and "https://" not in body and "src=" not in body


async def test_get_shows_the_confirmation_and_acts_on_nothing(http: httpx.AsyncClient, fake: FakeAct) -> None:
    url = path()
    for _ in range(3):  # a scanner, a prefetcher, the person
        response = await http.get(url)
        assert response.status_code == 200
    assert fake.actions == []
    assert_safe_page(response)
    page = response.text
    assert f"Acknowledge incident {KEY}?" in page
    assert "as Alice &lt;Ops&gt; Martin (alice)" in page  # escaped, never markup
    assert '<form method="post"><button type="submit">Acknowledge as alice</button></form>' in page
    assert "Nothing happens until you press the button" in page
    assert url.rsplit("/", 1)[1] not in page  # the form posts to its own URL: the token is not repeated
    head = await http.head(url)
    assert head.status_code == 405 and fake.actions == []


async def test_post_acts_as_the_signed_person_via_email_and_a_second_use_is_the_same_event(
    http: httpx.AsyncClient, fake: FakeAct, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = path("escalate", "bob")
    token = url.rsplit("/", 1)[1]
    first = await http.post(url)
    assert first.status_code == 200
    assert_safe_page(first)
    assert "Acknowledged by bob." in first.text and "using it again changes nothing" in first.text
    expected = InboundAction(vendor="email", verb="escalate", person="bob", event_id=event_id(token), key=KEY)
    assert fake.actions == [expected]
    # Used again on this receiver: it says so.
    again = await http.post(url)
    assert again.status_code == 200 and "Already done" in again.text
    assert "This link was used before: acknowledged by bob." in again.text
    assert fake.actions == [expected]
    # Used again on another replica, or after a restart: the same event, so the incident's update id dedups it.
    other = FakeAct()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app_with(other)), base_url="http://t") as replica:
        assert (await replica.post(url)).status_code == 200
    assert other.actions == [expected]
    # Another link of the same person is another event.
    await http.post(path("resolve", "bob"))
    assert fake.actions[1].event_id != expected.event_id and fake.actions[1].verb == "resolve"
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("tocsin")]
    assert ours and all(token not in line for line in ours)


@pytest.mark.parametrize(
    ("link", "status", "words"),
    [
        (lambda: path(expires=int(NOW) - 1), 403, "This link has expired"),
        (lambda: path(expires=int(NOW)), 403, "This link has expired"),
        (lambda: reencoded(path(), {2: "bob"}), 403, "This link has been altered"),
        (lambda: path()[:-5], 400, "not a Tocsin action link"),
        (lambda: path(person="mallory"), 403, "mallory is not in the roster"),
    ],
    ids=["expired", "expires-now", "altered", "truncated", "not-in-roster"],
)
async def test_refused_links_act_on_nothing(
    http: httpx.AsyncClient, fake: FakeAct, link: object, status: int, words: str
) -> None:
    url = link()  # type: ignore[operator]
    for method in ("GET", "POST"):
        response = await http.request(method, url)
        assert response.status_code == status, response.text
        assert words in response.text and "Nothing was done." in response.text
        assert "<form" not in response.text
        assert_safe_page(response)
    assert fake.actions == []


async def test_without_the_secret_the_links_are_off_like_every_unconfigured_vendor(fake: FakeAct) -> None:
    transport = httpx.ASGITransport(app=app_with(fake, secret=None))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        for method in ("GET", "POST"):
            response = await http.request(method, path())
            expected = not_configured("Email links", LINK_SECRET)
            assert response.status_code == expected.status_code == 404
            assert response.content == expected.body
            assert LINK_SECRET in response.json()["detail"]
    assert fake.actions == []


@pytest.mark.parametrize(
    ("error", "status", "words"),
    [
        (NotActed("incident checkout-1a2b3c is resolved and closed; <acknowledge> refused", "refused"), 409, "&lt;"),
        (NotActed("no incident with key 'x'", "no_incident"), 404, "no incident with key"),
        (TemporalUnavailable("Temporal did not answer: unavailable"), 503, "could not reach its workflow engine"),
        (TemporalUnavailable("Temporal did not answer: Failed client connect"), 503, "it acts once"),
        (RPCError("permission denied", RPCStatusCode.PERMISSION_DENIED, b""), 500, "Something went wrong"),
    ],
    ids=["refused", "no-incident", "temporal-unavailable", "no-connection", "other-error"],
)
async def test_what_the_incident_or_temporal_answers_is_told_as_a_page(
    error: BaseException, status: int, words: str
) -> None:
    act = FakeAct(error)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app_with(act)), base_url="http://t") as http:
        response = await http.post(path())
    assert response.status_code == status
    assert words in response.text
    assert ("retry-after" in response.headers) == (status == 503)
    assert_safe_page(response)


# --- the email channel's links -----------------------------------------------------------------------------

AT = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
PAGE_KEY = f"incident-{KEY}/0123abcd/page/0/1"


def composed(channel: SmtpEmail, **overrides: object) -> dict[str, str]:
    fields: dict[str, object] = {"idempotency_key": PAGE_KEY, "target": "alice@example.com", **overrides}
    msg = message(incident=KEY, at=AT, **fields)
    recipients = [a.strip() for a in msg.target.split(",")]
    raw = channel.compose(msg, recipients).as_bytes()
    mail = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(mail, email.message.EmailMessage)
    return {part.get_content_type(): part.get_content() for part in mail.iter_parts()}


def channel_with_links(ttl: timedelta = DEFAULT_TTL) -> SmtpEmail:
    maker = LinkMaker(SECRET, "https://tocsin.example.com/base", ROSTER, ttl)
    return SmtpEmail(SmtpSettings("127.0.0.1", 25), "tocsin@example.com", links=maker)


def test_a_page_to_a_roster_person_carries_their_three_links() -> None:
    parts = composed(channel_with_links())
    lines = [line for line in parts["text/plain"].splitlines() if ": https://" in line]
    assert [line.split(":", 1)[0] for line in lines] == ["Acknowledge", "Escalate", "Resolve"]
    for line, verb in zip(lines, ("acknowledge", "escalate", "resolve"), strict=True):
        url = urlsplit(line.split(": ", 1)[1])
        assert (url.scheme, url.netloc) == ("https", "tocsin.example.com")
        assert url.path.startswith("/base/api/v1/actions/")
        claims = verify(SECRET, url.path.rsplit("/", 1)[1], AT.timestamp())
        assert claims == LinkClaims(KEY, verb, "alice", int((AT + DEFAULT_TTL).timestamp()))  # type: ignore[arg-type]
        assert f"<a href='{url.geturl()}'>{verb.capitalize()}</a>" in parts["text/html"]
    # The same delivery composed again (a retry) carries the same links.
    assert composed(channel_with_links()) == parts


def test_no_links_for_strangers_several_recipients_notices_or_without_the_secret() -> None:
    channel = channel_with_links()
    plain = SmtpEmail(SmtpSettings("127.0.0.1", 25), "tocsin@example.com")
    for parts in (
        composed(channel, target="stranger@example.com"),
        composed(channel, target="alice@example.com, bob@example.com"),
        composed(channel, idempotency_key=f"incident-{KEY}/0123abcd/management/0"),
        composed(plain),
    ):
        assert "/api/v1/actions/" not in parts["text/plain"] + parts["text/html"]
    assert "/api/v1/actions/" in composed(channel, target="ALICE@example.com")["text/plain"]


def test_the_worker_reads_the_link_settings_and_its_own_roster(tmp_path: Path) -> None:
    base = {"TOCSIN_SMTP_URL": "smtp://127.0.0.1:25", "TOCSIN_EMAIL_FROM": "t@example.com"}
    assert (SmtpEmail.from_env(base) or pytest.fail()).links is None
    env = {**base, LINK_SECRET: SECRET, "TOCSIN_PUBLIC_URL": "https://tocsin.example.com/"}
    channel = SmtpEmail.from_env(env)
    assert channel is not None and channel.links is not None
    assert channel.links.public_url == "https://tocsin.example.com" and channel.links.ttl == DEFAULT_TTL
    assert "alice" in channel.links.roster.people  # the packaged default policy's roster
    assert SECRET not in repr(channel) + repr(channel.links)
    policy = tmp_path / "policy.yaml"
    policy.write_text(BASE + ROSTER_POLICY)  # alice is alice@example.com here, alice@company.com by default
    mine = SmtpEmail.from_env({**env, "TOCSIN_POLICY": str(policy), "TOCSIN_ACTION_LINK_TTL": "2h"})
    assert mine is not None and mine.links is not None
    assert mine.links.roster.people["alice"].email == "alice@example.com" and mine.links.ttl == timedelta(hours=2)
    bad = [
        ({**base, LINK_SECRET: SECRET}, "TOCSIN_PUBLIC_URL is not"),
        ({**env, "TOCSIN_PUBLIC_URL": "tocsin.example.com"}, "must be an http"),
        ({**env, "TOCSIN_ACTION_LINK_TTL": "90 days"}, "TOCSIN_ACTION_LINK_TTL: must be between"),
        ({**env, "TOCSIN_POLICY": str(tmp_path / "missing.yaml")}, "action links need the roster: TOCSIN_POLICY"),
    ]
    for settings, reason in bad:
        with pytest.raises(PermanentDeliveryError, match=reason) as caught:
            SmtpEmail.from_env(settings)
        assert SECRET not in str(caught.value)
