"""Twilio, Statuspage and GitHub adapters against a real local server speaking each vendor's shapes
(tests/support/vendor_server.py). Each checks the exact requests, the receipts, every error class (400, 401,
404, 429 with Retry-After, 500, timeouts, refused connections), idempotency, and that no secret reaches an
exception message or a log record. Email, against aiosmtpd with TLS: tests/integration/test_channels_email.py.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.channels import (
    GITHUB_TOKEN,
    SECRETS,
    STATUSPAGE_KEY,
    TWILIO_SID,
    TWILIO_TOKEN,
    assert_secret_free,
    message,
    no_secret_logged,  # noqa: F401 (autouse: every test here)
)
from tests.support.paths import ROOT
from tests.support.vendor_fakes import FakeGitHub, FakeStatuspage, closed_port
from tests.support.vendor_server import Reply, VendorServer
from tocsin.channels import _http
from tocsin.channels import github as github_module
from tocsin.channels.base import Channel, DeliveryError, Message, PermanentDeliveryError, RetryableDeliveryError
from tocsin.channels.github import GitHubIssues, marker
from tocsin.channels.smtp import SmtpEmail
from tocsin.channels.smtp_settings import SmtpSettings
from tocsin.channels.statuspage import COMPONENT_STATUS, Statuspage, delivery_mark, incident_ref
from tocsin.channels.twilio import TwilioSms, TwilioVoice, gather, twiml
from tocsin.policy.status_page import SEVERITY_IMPACT, StatusPagePolicy


@pytest.fixture
def server() -> Iterator[VendorServer]:
    with VendorServer() as running:
        yield running


@pytest.fixture
def short_http_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx

    monkeypatch.setattr(_http, "TIMEOUT", httpx.Timeout(0.3, connect=0.3))


def test_every_adapter_is_a_channel() -> None:
    adapters: list[Channel] = [
        SmtpEmail(SmtpSettings("127.0.0.1", 25), "tocsin@example.com"),
        TwilioSms(TWILIO_SID, TWILIO_TOKEN, "+15005550006"),
        TwilioVoice(TWILIO_SID, TWILIO_TOKEN, "+15005550006"),
        Statuspage(STATUSPAGE_KEY, "page1"),
        GitHubIssues(GITHUB_TOKEN, "acme/ops"),
    ]
    assert [a.name for a in adapters] == ["email", "sms", "phone", "statuspage", "github"]
    for adapter in adapters:
        assert isinstance(adapter, Channel)
        for secret in SECRETS:
            assert secret not in repr(adapter)


# ======================================================================================================
# Twilio
# ======================================================================================================

MESSAGES_PATH = f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"
CALLS_PATH = f"/2010-04-01/Accounts/{TWILIO_SID}/Calls.json"
ACCOUNT_PATH = f"/2010-04-01/Accounts/{TWILIO_SID}.json"


def twilio_error(status: int, code: int, text: str, headers: dict[str, str] | None = None) -> Reply:
    body = {"code": code, "message": text, "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status}
    return Reply(status, json=body, headers=headers or {})


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def test_twilio_sms_request_and_receipt(server: VendorServer) -> None:
    server.on("POST", MESSAGES_PATH, Reply(201, json={"sid": "SM0123", "status": "queued", "to": "+15551234567"}))
    sms = TwilioSms(TWILIO_SID, TWILIO_TOKEN, "+15005550006", server.url)
    receipt = await sms.send(message(channel="sms", target="+15551234567"))

    assert receipt.provider_id == "SM0123" and not receipt.duplicate
    [request] = server.requests
    assert (request.method, request.path) == ("POST", MESSAGES_PATH)
    assert request.headers["authorization"] == basic(TWILIO_SID, TWILIO_TOKEN)
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.headers["i-twilio-idempotency-token"] == "inc-checkout-1/page/0"
    assert request.form == {"To": ["+15551234567"], "From": ["+15005550006"], "Body": ["checkout is down: 5xx at 40%"]}


async def test_twilio_call_says_the_escaped_text(server: VendorServer) -> None:
    server.on("POST", CALLS_PATH, Reply(201, json={"sid": "CA0456", "status": "queued"}))
    phone = TwilioVoice(TWILIO_SID, TWILIO_TOKEN, "+15005550006", server.url)
    receipt = await phone.send(message(channel="phone", target="+15551234567", text="db & cache <down>"))

    assert receipt.provider_id == "CA0456"
    [request] = server.requests
    assert request.path == CALLS_PATH
    assert request.form_value("Twiml") == "<Response><Say>db &amp; cache &lt;down&gt;</Say></Response>"
    assert request.form_value("To") == "+15551234567" and request.form_value("From") == "+15005550006"
    assert "Body" not in request.form
    assert len(twiml("&" * 5000)) <= 4000


async def test_twilio_call_gathers_a_digit_when_the_receiver_is_public(server: VendorServer) -> None:
    """With TOCSIN_PUBLIC_URL, the call asks for 1 or 2 and posts the digit to the receiver's voice route,
    the incident's key (URL-encoded) in the action's query; the text is escaped as before."""
    server.on("POST", CALLS_PATH, Reply(201, json={"sid": "CA0457", "status": "queued"}))
    public = "https://tocsin.example.com/ops/"
    phone = TwilioVoice(TWILIO_SID, TWILIO_TOKEN, "+15005550006", server.url, public_url=public)
    await phone.send(message(channel="phone", target="+15551234567", text="db & cache <down>", incident="a b&c"))

    [request] = server.requests
    assert request.form_value("Twiml") == (
        '<Response><Gather numDigits="1" action="https://tocsin.example.com/ops/api/v1/twilio/voice?key=a%20b%26c"'
        ' method="POST"><Say>db &amp; cache &lt;down&gt;</Say><Say>Press 1 to acknowledge, 2 to escalate.</Say>'
        "</Gather><Say>Nothing was pressed. The incident stays as it was. Goodbye.</Say></Response>"
    )
    long = gather("<Dial>+1555</Dial> & " * 400, "https://tocsin.example.com/api/v1/twilio/voice?key=k")
    assert len(long) <= 4000 and long.count("<") == 10 and "…</Say><Say>Press 1" in long
    assert 'action="https://tocsin.example.com/api/v1/twilio/voice?key=k"' in long


@pytest.mark.parametrize(
    ("reply", "error", "reason", "retry_after"),
    [
        (
            twilio_error(400, 21211, "The 'To' number +1555 is not a valid phone number."),
            PermanentDeliveryError,
            "21211",
            None,
        ),
        (twilio_error(401, 20003, "Authenticate"), PermanentDeliveryError, "401: 20003 Authenticate", None),
        (twilio_error(404, 20404, "The requested resource was not found"), PermanentDeliveryError, "20404", None),
        (twilio_error(429, 20429, "Too Many Requests", {"Retry-After": "7"}), RetryableDeliveryError, "429", 7.0),
        (twilio_error(500, 20500, "Internal Server Error"), RetryableDeliveryError, "500", None),
        (Reply(503, body="upstream unavailable"), RetryableDeliveryError, "503", None),
    ],
    ids=["400", "401", "404", "429", "500", "503-not-json"],
)
async def test_twilio_errors(
    server: VendorServer, reply: Reply, error: type[DeliveryError], reason: str, retry_after: float | None
) -> None:
    server.on("POST", MESSAGES_PATH, reply)
    sms = TwilioSms(TWILIO_SID, TWILIO_TOKEN, "+15005550006", server.url)
    with pytest.raises(error, match=reason) as caught:
        await sms.send(message(channel="sms", target="+1555"))
    assert type(caught.value) is error
    assert getattr(caught.value, "retry_after", None) == retry_after
    assert_secret_free(caught.value)


async def test_twilio_timeout_and_refused(server: VendorServer, short_http_timeout: None) -> None:
    server.on("POST", MESSAGES_PATH, Reply(201, json={"sid": "SM1"}, delay=2))
    with pytest.raises(RetryableDeliveryError, match="twilio timed out"):
        await TwilioSms(TWILIO_SID, TWILIO_TOKEN, "+15005550006", server.url).send(message(target="+1555"))
    gone = TwilioSms(TWILIO_SID, TWILIO_TOKEN, "+15005550006", f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(RetryableDeliveryError, match="twilio unreachable"):
        await gone.send(message(target="+1555"))


async def test_twilio_check_reads_the_account_only(server: VendorServer) -> None:
    server.on(
        "GET",
        ACCOUNT_PATH,
        Reply(json={"sid": TWILIO_SID, "friendly_name": "Acme ops", "status": "active"}),
        Reply(json={"sid": TWILIO_SID, "friendly_name": "Acme ops", "status": "suspended"}),
        twilio_error(401, 20003, "Authenticate"),
    )
    phone = TwilioVoice(TWILIO_SID, TWILIO_TOKEN, "+15005550006", server.url)
    assert await phone.check() == "twilio: account Acme ops active, phone from +15005550006"
    with pytest.raises(PermanentDeliveryError, match="suspended"):
        await phone.check()
    with pytest.raises(PermanentDeliveryError, match="401") as caught:
        await phone.check()
    assert_secret_free(caught.value)
    assert server.calls() == [f"GET {ACCOUNT_PATH}"] * 3
    assert server.requests[0].headers["authorization"] == basic(TWILIO_SID, TWILIO_TOKEN)


def test_twilio_configuration(tmp_path: Path) -> None:
    assert TwilioSms.from_env({}) is None
    token_file = tmp_path / "token"
    token_file.write_text(TWILIO_TOKEN + "\n")
    env = {
        "TOCSIN_TWILIO_ACCOUNT_SID": TWILIO_SID,
        "TOCSIN_TWILIO_AUTH_TOKEN_FILE": str(token_file),
        "TOCSIN_TWILIO_FROM": "+15005550006",
        "TOCSIN_TWILIO_API_URL": "http://twilio.test/",
    }
    sms, phone = TwilioSms.from_env(env), TwilioVoice.from_env(env)
    assert isinstance(sms, TwilioSms) and isinstance(phone, TwilioVoice)
    assert sms.api_url == "http://twilio.test"
    assert phone.public_url is None  # calls only speak
    public = TwilioVoice.from_env({**env, "TOCSIN_PUBLIC_URL": " https://tocsin.example.com/ "})
    assert public is not None and public.public_url == "https://tocsin.example.com"
    with pytest.raises(PermanentDeliveryError, match="TOCSIN_PUBLIC_URL: not an absolute http"):
        TwilioVoice.from_env({**env, "TOCSIN_PUBLIC_URL": "tocsin.example.com"})
    with pytest.raises(PermanentDeliveryError, match="TOCSIN_TWILIO_AUTH_TOKEN, TOCSIN_TWILIO_FROM not set"):
        TwilioSms.from_env({"TOCSIN_TWILIO_ACCOUNT_SID": TWILIO_SID})
    with pytest.raises(PermanentDeliveryError, match="TOCSIN_TWILIO_API_URL: not an absolute http"):
        TwilioSms.from_env({**env, "TOCSIN_TWILIO_API_URL": "api.twilio.com"})


# ======================================================================================================
# Statuspage
# ======================================================================================================

PAGE = "kctbh9vrtdwd"


@pytest.fixture
def statuspage(server: VendorServer) -> FakeStatuspage:
    return FakeStatuspage(server, PAGE, {"cmp_checkout": "operational"})


PUBLIC = StatusPagePolicy(components=["checkout", "search"], titles={"sev2": "Checkout is slow ({component})"})
# What an alert sender wrote: it names an internal host and a failing secret rotation.
LEAKY_TITLE = "token rotation failed on vault-int-3.corp.internal:8200 <!channel>"
LEAKY_TEXT = f"Investigating: {LEAKY_TITLE}"


def statuspage_channel(server: VendorServer, public: StatusPagePolicy = PUBLIC) -> Statuspage:
    return Statuspage(STATUSPAGE_KEY, PAGE, server.url, components={"checkout": "cmp_checkout"}, public=public)


def public_message(**overrides: Any) -> Message:
    return message(
        **{"channel": "statuspage", "target": "checkout", "title": LEAKY_TITLE, "text": LEAKY_TEXT, **overrides}
    )


async def test_statuspage_opens_updates_and_resolves_one_incident(
    server: VendorServer, statuspage: FakeStatuspage
) -> None:
    channel = statuspage_channel(server)
    opened = await channel.send(public_message())
    acked = await channel.send(public_message(idempotency_key="k2", status="acknowledged", text="Found vault-int-3"))
    resolved = await channel.send(public_message(idempotency_key="k3", status="resolved", text="Fixed vault-int-3"))

    assert opened.provider_id == acked.provider_id == resolved.provider_id == "inc1"
    assert not (opened.duplicate or acked.duplicate or resolved.duplicate)
    base = f"/pages/{PAGE}"
    assert server.calls() == [
        f"GET {base}/incidents/unresolved",
        f"POST {base}/incidents",
        f"PATCH {base}/components/cmp_checkout",
        f"GET {base}/incidents/unresolved",
        f"PATCH {base}/incidents/inc1",
        f"PATCH {base}/components/cmp_checkout",
        f"GET {base}/incidents/unresolved",
        f"PATCH {base}/incidents/inc1",
        f"PATCH {base}/components/cmp_checkout",
    ]
    assert all(r.headers["authorization"] == f"OAuth {STATUSPAGE_KEY}" for r in server.requests)
    assert server.requests[0].query == {"per_page": ["100"]}
    create = server.requests[1].json["incident"]
    # The title and body are worded from the policy: the alert's summary (the incident title) and the
    # delivery's text never leave Tocsin.
    assert create == {
        "name": "Major outage on checkout",
        "status": "investigating",
        "body": "We are investigating an issue affecting checkout.",
        "metadata": {
            "tocsin": {"incident": incident_ref("inc-checkout-1"), "deliveries": delivery_mark("inc-checkout-1/page/0")}
        },
        "component_ids": ["cmp_checkout"],
    }
    assert server.requests[2].json == {"component": {"status": "major_outage"}}
    assert server.requests[4].json["incident"]["status"] == "identified"
    assert server.requests[4].json["incident"]["name"] == "Major outage on checkout"
    assert server.requests[4].json["incident"]["body"] == (
        "The issue affecting checkout has been identified and a fix is in progress."
    )
    assert server.requests[7].json["incident"]["status"] == "resolved"
    assert server.requests[7].json["incident"]["body"] == "This incident affecting checkout has been resolved."
    assert server.requests[8].json == {"component": {"status": "operational"}}
    [incident] = statuspage.incidents
    assert [u["status"] for u in incident["incident_updates"]] == ["investigating", "identified", "resolved"]
    assert statuspage.components["cmp_checkout"] == "operational"
    sent = " ".join(r.body.decode() for r in server.requests)
    for leak in ("vault-int-3", "corp.internal", "token rotation", "<!channel>", "Checkout down"):
        assert leak not in sent, leak


async def test_statuspage_titles_follow_the_policy_per_severity(
    server: VendorServer, statuspage: FakeStatuspage
) -> None:
    channel = statuspage_channel(server)
    await channel.send(public_message(severity="sev2"))
    # The severity rises: the same public incident is renamed, as its component's status changes.
    await channel.send(public_message(idempotency_key="k2", severity="sev1", status="acknowledged"))
    await channel.send(public_message(idempotency_key="k3", service="search", target="search", severity="sev3"))
    names = [
        r.json["incident"]["name"] for r in server.requests if r.method in ("POST", "PATCH") and "incident" in r.json
    ]
    assert names == ["Checkout is slow (checkout)", "Major outage on checkout", "Degraded performance on search"]
    assert statuspage.components["cmp_checkout"] == "major_outage"


async def test_statuspage_publishes_nothing_for_an_unlisted_service(
    server: VendorServer, statuspage: FakeStatuspage
) -> None:
    channel = statuspage_channel(server)
    for n, status in enumerate(("triggered", "acknowledged", "resolved")):
        receipt = await channel.send(
            public_message(idempotency_key=f"k{n}", service="vault-int", target="checkout", status=status)
        )
        assert receipt.provider_id == "statuspage:not-public"
    # Not even a lookup: the page, its incidents and its components never hear of the service.
    assert server.requests == []
    unlisted = statuspage_channel(server, StatusPagePolicy())  # nothing listed, nothing published
    assert (await unlisted.send(public_message())).provider_id == "statuspage:not-public"
    assert server.requests == [] and statuspage.incidents == []


async def test_statuspage_sends_only_a_reference_to_the_incident_key(
    server: VendorServer, statuspage: FakeStatuspage
) -> None:
    # An incident opened before keys were hashed (its metadata holds the raw key) is still found and updated.
    statuspage.incidents.append(
        {
            "id": "inc0",
            "status": "investigating",
            "metadata": {"tocsin": {"incident": "inc-checkout-1"}},
            "components": [],
            "incident_updates": [],
        }
    )
    await statuspage_channel(server).send(public_message(idempotency_key="k2", status="acknowledged"))
    assert server.calls()[1] == f"PATCH /pages/{PAGE}/incidents/inc0"
    assert server.requests[1].json["incident"]["metadata"]["tocsin"]["incident"] == incident_ref("inc-checkout-1")
    assert all("inc-checkout-1" not in r.text for r in server.requests)


def test_public_impact_follows_the_component_status() -> None:
    assert SEVERITY_IMPACT == COMPONENT_STATUS


async def test_statuspage_retry_never_opens_a_second_incident(server: VendorServer, statuspage: FakeStatuspage) -> None:
    channel = statuspage_channel(server)
    statuspage.fail_create_after_saving = True
    first = public_message()
    with pytest.raises(RetryableDeliveryError, match="504"):
        await channel.send(first)
    statuspage.fail_create_after_saving = False

    retried = await channel.send(first)  # the activity's next attempt
    again = await channel.send(first)
    assert retried.provider_id == again.provider_id == "inc1"
    assert retried.duplicate and again.duplicate
    assert len(statuspage.incidents) == 1
    assert len(server.received("POST")) == 1
    # The component is still set on the retry: the first attempt never got that far.
    assert statuspage.components["cmp_checkout"] == "major_outage"

    resolve = public_message(idempotency_key="k9", status="resolved", text="Fixed")
    assert not (await channel.send(resolve)).duplicate
    repeat = await channel.send(resolve)  # no longer unresolved: found among all incidents
    assert repeat.provider_id == "inc1" and repeat.duplicate
    assert server.calls()[-3:] == [
        f"GET /pages/{PAGE}/incidents/unresolved",
        f"GET /pages/{PAGE}/incidents",
        f"PATCH /pages/{PAGE}/components/cmp_checkout",  # setting a status again is harmless
    ]
    assert len(statuspage.incidents[0]["incident_updates"]) == 2


async def test_statuspage_resolving_nothing_open_writes_nothing(
    server: VendorServer, statuspage: FakeStatuspage
) -> None:
    receipt = await statuspage_channel(server).send(public_message(status="resolved", target="x"))
    assert receipt.provider_id == "statuspage:no-open-incident"
    assert [r.method for r in server.requests] == ["GET", "GET"]


@pytest.mark.parametrize(
    ("reply", "error", "reason", "retry_after"),
    [
        (Reply(400, json={"error": ["Name can't be blank"]}), PermanentDeliveryError, "400: Name can't be blank", None),
        (Reply(401, json={"error": "Could not authenticate"}), PermanentDeliveryError, "401", None),
        (Reply(404, json={"error": "Page not found"}), PermanentDeliveryError, "404: Page not found", None),
        (Reply(420, json={"error": "Rate limited"}, headers={"Retry-After": "2"}), RetryableDeliveryError, "420", 2.0),
        (Reply(429, json={"error": "Rate limited"}, headers={"Retry-After": "3"}), RetryableDeliveryError, "429", 3.0),
        (Reply(500, json={"error": "Internal"}), RetryableDeliveryError, "500", None),
    ],
    ids=["400", "401", "404", "420", "429", "500"],
)
async def test_statuspage_errors(
    server: VendorServer, reply: Reply, error: type[DeliveryError], reason: str, retry_after: float | None
) -> None:
    server.on("GET", f"/pages/{PAGE}/incidents/unresolved", Reply(json=[]))
    server.on("POST", f"/pages/{PAGE}/incidents", reply)
    with pytest.raises(error, match=reason) as caught:
        await statuspage_channel(server).send(public_message())
    assert type(caught.value) is error
    assert getattr(caught.value, "retry_after", None) == retry_after
    assert_secret_free(caught.value)


async def test_statuspage_timeout_and_refused(server: VendorServer, short_http_timeout: None) -> None:
    server.on("GET", f"/pages/{PAGE}/incidents/unresolved", Reply(json=[], delay=2))
    with pytest.raises(RetryableDeliveryError, match="statuspage timed out"):
        await statuspage_channel(server).send(message())
    gone = Statuspage(STATUSPAGE_KEY, PAGE, f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(RetryableDeliveryError, match="statuspage unreachable"):
        await gone.check()


async def test_statuspage_check(server: VendorServer, statuspage: FakeStatuspage) -> None:
    assert await statuspage_channel(server).check() == f"statuspage: page Acme Status ({PAGE})"
    assert server.calls() == [f"GET /pages/{PAGE}"]
    server.on("GET", f"/pages/{PAGE}", Reply(401, json={"error": "Could not authenticate"}))
    with pytest.raises(PermanentDeliveryError, match="401") as caught:
        await statuspage_channel(server).check()
    assert_secret_free(caught.value)


def test_statuspage_configuration(tmp_path: Path) -> None:
    assert Statuspage.from_env({}) is None
    env = {
        "TOCSIN_STATUSPAGE_API_KEY": STATUSPAGE_KEY,
        "TOCSIN_STATUSPAGE_PAGE_ID": PAGE,
        "TOCSIN_STATUSPAGE_COMPONENTS": "checkout=cmp1, billing = cmp2",
        "TOCSIN_POLICY": str(ROOT / "policies" / "default.yaml"),
    }
    channel = Statuspage.from_env(env)
    assert channel is not None
    assert channel.component_for("checkout") == "cmp1" and channel.component_for("billing") == "cmp2"
    assert channel.component_for("component:cmp9") == "cmp9" and channel.component_for("search") is None
    # What is public comes from the worker's own policy file, and TOCSIN_STATUS_COMPONENTS replaces its list.
    assert channel.public.components == ["checkout", "billing", "search"]
    assert channel.public.title("sev2", "billing") == "Partial outage on billing"
    narrowed = Statuspage.from_env({**env, "TOCSIN_STATUS_COMPONENTS": "billing"})
    assert narrowed is not None and narrowed.public.components == ["billing"]
    with pytest.raises(PermanentDeliveryError, match=r"TOCSIN_POLICY: .*no such policy file"):
        Statuspage.from_env({**env, "TOCSIN_POLICY": str(tmp_path / "missing.yaml")})
    with pytest.raises(PermanentDeliveryError, match=r"TOCSIN_STATUS_COMPONENTS: .*storm"):
        Statuspage.from_env({**env, "TOCSIN_STATUS_COMPONENTS": "checkout,storm"})
    with pytest.raises(PermanentDeliveryError, match="TOCSIN_STATUSPAGE_PAGE_ID is not set"):
        Statuspage.from_env({"TOCSIN_STATUSPAGE_API_KEY": STATUSPAGE_KEY})
    with pytest.raises(PermanentDeliveryError, match="not service=component_id"):
        Statuspage.from_env(
            {"TOCSIN_STATUSPAGE_API_KEY": "k", "TOCSIN_STATUSPAGE_PAGE_ID": PAGE, "TOCSIN_STATUSPAGE_COMPONENTS": "x"}
        )


# ======================================================================================================
# GitHub issues, through PyGithub
# ======================================================================================================

REPO = "acme/ops"


@pytest.fixture
def fake_github(server: VendorServer) -> FakeGitHub:
    return FakeGitHub(server)


def github_channel(server: VendorServer) -> GitHubIssues:
    return GitHubIssues(GITHUB_TOKEN, REPO, server.url, pace=False)


async def test_github_creates_an_issue_with_a_hidden_marker(server: VendorServer, fake_github: FakeGitHub) -> None:
    receipt = await github_channel(server).send(message(channel="github", target="backlog", text="Schedule fix: x"))

    assert receipt.provider_id == "acme/ops#1" and not receipt.duplicate
    assert server.calls() == [f"GET /repos/{REPO}/issues", f"POST /repos/{REPO}/issues"]
    listing, create = server.requests
    assert listing.query == {
        "state": ["all"],
        "labels": ["tocsin"],
        "sort": ["created"],
        "direction": ["desc"],
        "per_page": ["100"],
    }
    for request in server.requests:
        assert request.headers["authorization"] == f"token {GITHUB_TOKEN}"
    assert create.json["title"] == "Checkout down <prod>"
    assert create.json["labels"] == ["tocsin", "backlog"]
    body = create.json["body"]
    assert body.startswith("Schedule fix: x\n")
    assert "| Severity | sev1 |" in body
    assert body.rstrip().endswith("<!-- tocsin:inc-checkout-1/page/0 -->")
    assert marker("a-->b") == "<!-- tocsin:a-&#45;>b -->"


async def test_github_retry_finds_the_first_attempts_issue(server: VendorServer, fake_github: FakeGitHub) -> None:
    channel = github_channel(server)
    first = await channel.send(message(channel="github", target="tickets"))
    again = await channel.send(message(channel="github", target="tickets"))
    other = await channel.send(message(channel="github", target="tickets", idempotency_key="k2"))
    assert (first.provider_id, first.duplicate) == ("acme/ops#1", False)
    assert (again.provider_id, again.duplicate) == ("acme/ops#1", True)
    assert (other.provider_id, other.duplicate) == ("acme/ops#2", False)
    assert len(server.received("POST")) == 2

    # Closed issues count, and the marker is found on a later page.
    fake_github.issues[REPO][0]["state"] = "closed"
    for i in range(5):
        fake_github.add(REPO, {"title": f"noise {i}", "body": "x", "labels": ["tocsin"]})
    fake_github.page_size = 2
    server.reset()
    third = await channel.send(message(channel="github", target="tickets"))
    assert (third.provider_id, third.duplicate) == ("acme/ops#1", True)
    assert server.received("POST") == []
    assert len(server.received("GET")) == 4


async def test_github_target_repository(server: VendorServer, fake_github: FakeGitHub) -> None:
    receipt = await github_channel(server).send(message(channel="github", target="acme/payments"))
    assert receipt.provider_id == "acme/payments#1"
    assert server.calls() == ["GET /repos/acme/payments/issues", "POST /repos/acme/payments/issues"]
    assert server.requests[1].json["labels"] == ["tocsin"]


@pytest.mark.parametrize(
    ("reply", "error", "reason", "retry_after"),
    [
        (Reply(401, json={"message": "Bad credentials"}), PermanentDeliveryError, "401: Bad credentials", None),
        (
            Reply(403, json={"message": "Resource not accessible by personal access token"}),
            PermanentDeliveryError,
            "403: Resource not accessible",
            None,
        ),
        (Reply(404, json={"message": "Not Found"}), PermanentDeliveryError, "404: Not Found", None),
        (
            Reply(
                422,
                json={
                    "message": "Validation Failed",
                    "errors": [{"resource": "Issue", "code": "missing_field", "field": "title"}],
                },
            ),
            PermanentDeliveryError,
            "422: Validation Failed \\(code=missing_field field=title\\)",
            None,
        ),
        (
            Reply(
                403,
                json={"message": "API rate limit exceeded for user ID 1."},
                headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": "RESET"},
            ),
            RetryableDeliveryError,
            "403: API rate limit exceeded",
            "reset",
        ),
        (
            Reply(403, json={"message": "You have exceeded a secondary rate limit."}, headers={"retry-after": "30"}),
            RetryableDeliveryError,
            "secondary rate limit",
            30.0,
        ),
        (
            Reply(429, json={"message": "Too many requests"}, headers={"Retry-After": "12"}),
            RetryableDeliveryError,
            "429",
            12.0,
        ),
        (Reply(500, json={"message": "Server Error"}), RetryableDeliveryError, "500", None),
        (Reply(502, body="<html>bad gateway</html>"), RetryableDeliveryError, "502", None),
    ],
    ids=["401", "403", "404", "422", "403-primary-rate-limit", "403-secondary-rate-limit", "429", "500", "502-html"],
)
async def test_github_errors(
    server: VendorServer, reply: Reply, error: type[DeliveryError], reason: str, retry_after: float | str | None
) -> None:
    reset = int(dt.datetime.now(dt.UTC).timestamp()) + 120
    if "x-ratelimit-reset" in reply.headers:
        reply.headers["x-ratelimit-reset"] = str(reset)
    server.on("GET", f"/repos/{REPO}/issues", Reply(json=[]))
    server.on("POST", f"/repos/{REPO}/issues", reply)
    with pytest.raises(error, match=reason) as caught:
        await github_channel(server).send(message(channel="github"))
    assert type(caught.value) is error
    got = getattr(caught.value, "retry_after", None)
    if retry_after == "reset":
        assert got is not None and 100 < got <= 120
    else:
        assert got == retry_after
    assert_secret_free(caught.value)


async def test_github_timeout_and_refused(server: VendorServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(github_module, "TIMEOUT_SECONDS", 1)  # PyGithub takes whole seconds
    server.on("GET", f"/repos/{REPO}/issues", Reply(json=[], delay=3))
    with pytest.raises(RetryableDeliveryError, match="github timed out"):
        await github_channel(server).send(message(channel="github"))
    gone = GitHubIssues(GITHUB_TOKEN, REPO, f"http://127.0.0.1:{closed_port()}", pace=False)
    with pytest.raises(RetryableDeliveryError, match="github unreachable"):
        await gone.check()


async def test_github_check_reads_the_repository(server: VendorServer, fake_github: FakeGitHub) -> None:
    assert await github_channel(server).check() == "github: acme/ops (issues enabled)"
    assert server.calls() == [f"GET /repos/{REPO}"]

    server.on("GET", f"/repos/{REPO}", Reply(json={**fake_github.repo_json(REPO), "has_issues": False}))
    with pytest.raises(PermanentDeliveryError, match="issues disabled"):
        await github_channel(server).check()
    server.on("GET", f"/repos/{REPO}", Reply(401, json={"message": "Bad credentials"}))
    with pytest.raises(PermanentDeliveryError, match="401: Bad credentials") as caught:
        await github_channel(server).check()
    assert_secret_free(caught.value)
    assert server.received("POST") == []


def test_github_configuration(tmp_path: Path) -> None:
    assert GitHubIssues.from_env({}) is None
    assert GitHubIssues.from_env({"GITHUB_TOKEN": GITHUB_TOKEN}) is None  # a CI token alone configures nothing
    token_file = tmp_path / "token"
    token_file.write_text(GITHUB_TOKEN)
    channel = GitHubIssues.from_env(
        {
            "GITHUB_TOKEN_FILE": str(token_file),
            "TOCSIN_GITHUB_REPO": REPO,
            "TOCSIN_GITHUB_API_URL": "https://ghe/api/v3/",
        }
    )
    assert channel is not None and channel.repo == REPO and channel.api_url == "https://ghe/api/v3"
    with pytest.raises(PermanentDeliveryError, match="GITHUB_TOKEN is not"):
        GitHubIssues.from_env({"TOCSIN_GITHUB_REPO": REPO})
    with pytest.raises(PermanentDeliveryError, match="owner/name"):
        GitHubIssues.from_env({"TOCSIN_GITHUB_REPO": "ops", "GITHUB_TOKEN": GITHUB_TOKEN})
