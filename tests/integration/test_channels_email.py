"""The email adapter against aiosmtpd on loopback: plain, STARTTLS with authentication, implicit TLS (a
self-signed certificate), the reply codes, refused connections and timeouts, that no credential reaches an
exception message or a log record (the HTTP vendors: tests/unit/test_channels_vendors.py), and the signed
action links a page carries (tests/unit/test_action_links.py has the rest).
"""

from __future__ import annotations

import email
import email.policy
import socket
import ssl
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.support.channels import (
    SECRETS,
    SMTP_PASSWORD,
    SMTP_USER,
    assert_secret_free,
    message,
    no_secret_logged,  # noqa: F401 (autouse: every test here)
)
from tests.support.tls import self_signed
from tests.support.vendor_fakes import MailRecorder, closed_port, smtp_server
from tocsin.channels.base import DeliveryError, PermanentDeliveryError, RetryableDeliveryError
from tocsin.channels.smtp import SmtpEmail, message_id
from tocsin.channels.smtp_settings import SmtpSettings
from tocsin.policy.roster_schema import Roster
from tocsin.responders.links import LinkMaker, verify

# ======================================================================================================
# Email over SMTP, against aiosmtpd
# ======================================================================================================


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1, and its key."""
    cert, key = self_signed("tocsin test smtp")
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert)
    key_file.write_bytes(key)
    return cert_file, key_file


@pytest.fixture(scope="module")
def server_tls(tls_files: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*tls_files)
    return context


@pytest.fixture(scope="module")
def client_tls(tls_files: tuple[Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(tls_files[0]))


def parse(raw: bytes) -> email.message.EmailMessage:
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, email.message.EmailMessage)
    return parsed


async def test_email_sends_text_and_html_parts_with_a_stable_message_id() -> None:
    handler = MailRecorder(login=(SMTP_USER, SMTP_PASSWORD))
    with smtp_server(handler) as port:
        channel = SmtpEmail(SmtpSettings.from_url(f"smtp://127.0.0.1:{port}"), "Tocsin <tocsin@example.com>")
        first = message(target="oncall@example.com, Bob <bob@example.com>")
        receipt = await channel.send(first)
        again = await channel.send(first)  # a retried activity
        other = await channel.send(message(idempotency_key="inc-checkout-1/page/1"))

    assert receipt.provider_id == again.provider_id == message_id("inc-checkout-1/page/0")
    assert receipt.provider_id.startswith("<") and receipt.provider_id.endswith("@tocsin>")
    assert other.provider_id != receipt.provider_id
    assert len(handler.delivered) == 3
    sender, recipients, raw = handler.delivered[0]
    assert sender == "tocsin@example.com"
    assert recipients == ["oncall@example.com", "bob@example.com"]
    mail = parse(raw)
    assert mail["Message-ID"] == receipt.provider_id
    assert parse(handler.delivered[1][2])["Message-ID"] == receipt.provider_id
    assert mail["Subject"] == "[sev1] Checkout down <prod>"
    assert mail["From"] == "Tocsin <tocsin@example.com>"
    assert mail["To"] == "oncall@example.com, bob@example.com"
    assert mail["X-Tocsin-Incident"] == "inc-checkout-1"
    assert mail.get_content_type() == "multipart/alternative"
    parts = {part.get_content_type(): part.get_content() for part in mail.iter_parts()}
    assert set(parts) == {"text/plain", "text/html"}
    assert "checkout is down: 5xx at 40%" in parts["text/plain"]
    assert "Severity: sev1" in parts["text/plain"]
    assert "<h2>Checkout down &lt;prod&gt;</h2>" in parts["text/html"]
    assert "<td>checkout</td>" in parts["text/html"]


async def test_email_starttls_and_login_then_check_sends_nothing(
    server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    handler = MailRecorder(login=(SMTP_USER, SMTP_PASSWORD))
    with smtp_server(
        handler, tls_context=server_tls, require_starttls=True, authenticator=handler.authenticate
    ) as port:
        url = f"smtp://{SMTP_USER}:{quote(SMTP_PASSWORD, safe='')}@127.0.0.1:{port}"
        channel = SmtpEmail(SmtpSettings.from_url(url), "tocsin@example.com", ssl_context=client_tls)
        status = await channel.check()
        assert handler.mail_commands == 0 and handler.delivered == []
        await channel.send(message())

    assert status == f"email: 127.0.0.1:{port} (STARTTLS, authenticated), from tocsin@example.com"
    assert [ok for _, ok in handler.logins] == [True, True]
    assert len(handler.delivered) == 1


async def test_email_wrong_password_is_permanent_and_names_no_credential(
    server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    handler = MailRecorder(login=(SMTP_USER, SMTP_PASSWORD))
    with smtp_server(handler, tls_context=server_tls, authenticator=handler.authenticate) as port:
        settings = SmtpSettings("127.0.0.1", port, username=SMTP_USER, password="not-" + SMTP_PASSWORD[4:])
        channel = SmtpEmail(settings, "tocsin@example.com", ssl_context=client_tls)
        for attempt in (lambda: channel.send(message()), channel.check):
            with pytest.raises(PermanentDeliveryError, match="rejected the credentials \\(535\\)") as caught:
                await attempt()
            assert_secret_free(caught.value)
            assert "not-" not in str(caught.value)
    assert handler.delivered == []


async def test_email_implicit_tls(server_tls: ssl.SSLContext, client_tls: ssl.SSLContext) -> None:
    handler = MailRecorder(login=(SMTP_USER, SMTP_PASSWORD))
    # aiosmtpd's auth_require_tls only knows STARTTLS; this connection is TLS from the first byte.
    with smtp_server(
        handler, ssl_context=server_tls, authenticator=handler.authenticate, auth_require_tls=False
    ) as port:
        settings = SmtpSettings.from_url(f"smtps://{SMTP_USER}:{quote(SMTP_PASSWORD, safe='')}@127.0.0.1:{port}")
        channel = SmtpEmail(settings, "tocsin@example.com", ssl_context=client_tls)
        assert (await channel.check()).startswith(f"email: 127.0.0.1:{port} (TLS, authenticated)")
        await channel.send(message())
    assert len(handler.delivered) == 1


async def test_email_untrusted_certificate_is_permanent(server_tls: ssl.SSLContext) -> None:
    with smtp_server(MailRecorder(login=(SMTP_USER, SMTP_PASSWORD)), tls_context=server_tls) as port:
        channel = SmtpEmail(SmtpSettings.from_url(f"smtp://127.0.0.1:{port}"), "tocsin@example.com")
        with pytest.raises(PermanentDeliveryError, match="TLS certificate not trusted"):
            await channel.send(message())


async def test_email_never_sends_a_password_in_the_clear() -> None:
    handler = MailRecorder(login=(SMTP_USER, SMTP_PASSWORD))
    with smtp_server(handler, authenticator=handler.authenticate, auth_require_tls=False) as port:
        creds = f"{SMTP_USER}:{quote(SMTP_PASSWORD, safe='')}@127.0.0.1:{port}"
        guarded = SmtpEmail(SmtpSettings.from_url(f"smtp://{creds}"), "tocsin@example.com")
        with pytest.raises(PermanentDeliveryError, match="offers no STARTTLS") as caught:
            await guarded.send(message())
        assert_secret_free(caught.value)
        assert handler.logins == []

        required = SmtpEmail(SmtpSettings.from_url(f"smtp://127.0.0.1:{port}?starttls=require"), "t@example.com")
        with pytest.raises(PermanentDeliveryError, match="does not offer STARTTLS"):
            await required.send(message())

        # An explicit opt-in (a relay on a private network) logs in without TLS.
        allowed = SmtpEmail(SmtpSettings.from_url(f"smtp://{creds}?starttls=never"), "tocsin@example.com")
        await allowed.send(message())
    assert handler.logins == [("PLAIN", True)]
    assert len(handler.delivered) == 1


@pytest.mark.parametrize(
    ("handler", "error", "reason"),
    [
        (MailRecorder(rcpt_reply="550 5.1.1 <oncall@example.com>: user unknown"), PermanentDeliveryError, "550"),
        (MailRecorder(rcpt_reply="452 4.2.2 mailbox full"), RetryableDeliveryError, "452"),
        (MailRecorder(data_reply="554 5.7.1 rejected as spam"), PermanentDeliveryError, "554"),
        (MailRecorder(data_reply="451 4.3.0 try again later"), RetryableDeliveryError, "451"),
    ],
    ids=["rcpt-550", "rcpt-452", "data-554", "data-451"],
)
async def test_email_reply_codes(handler: MailRecorder, error: type[DeliveryError], reason: str) -> None:
    with smtp_server(handler) as port:
        channel = SmtpEmail(SmtpSettings.from_url(f"smtp://127.0.0.1:{port}"), "tocsin@example.com")
        with pytest.raises(error, match=reason) as caught:
            await channel.send(message())
    assert type(caught.value) is error
    assert handler.delivered == []


async def test_email_refused_connection_and_timeout_retry() -> None:
    refused = SmtpEmail(SmtpSettings.from_url(f"smtp://127.0.0.1:{closed_port()}"), "tocsin@example.com")
    with pytest.raises(RetryableDeliveryError, match="unreachable: ConnectionRefusedError"):
        await refused.send(message())

    # A server that accepts the connection and never greets.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        hung = SmtpEmail(SmtpSettings.from_url(f"smtp://127.0.0.1:{port}?timeout=0.3"), "tocsin@example.com")
        with pytest.raises(RetryableDeliveryError, match=r"timed out after 0\.3s"):
            await hung.check()


async def test_email_rejects_targets_that_are_not_addresses() -> None:
    channel = SmtpEmail(SmtpSettings("127.0.0.1", closed_port()), "tocsin@example.com")
    with pytest.raises(PermanentDeliveryError, match="not a list of email addresses"):
        await channel.send(message(target="executives"))


def test_email_configuration(tmp_path: Path) -> None:
    assert SmtpEmail.from_env({}) is None
    secret_file = tmp_path / "smtp-url"
    secret_file.write_text(f"smtp://{SMTP_USER}:{quote(SMTP_PASSWORD, safe='')}@mail.example.com\n")
    channel = SmtpEmail.from_env({"TOCSIN_SMTP_URL_FILE": str(secret_file), "TOCSIN_EMAIL_FROM": "t@example.com"})
    assert channel is not None
    settings = channel.settings
    assert (settings.host, settings.port, settings.implicit_tls, settings.starttls) == (
        "mail.example.com",
        587,
        False,
        "auto",
    )
    assert (settings.username, settings.password) == (SMTP_USER, SMTP_PASSWORD)
    assert SmtpSettings.from_url("smtps://mail.example.com").port == 465
    for secret in SECRETS:
        assert secret not in repr(channel)

    creds = f"{SMTP_USER}:{quote(SMTP_PASSWORD, safe='')}"
    bad = [
        ({"TOCSIN_SMTP_URL": f"smtp://{creds}@h"}, "TOCSIN_EMAIL_FROM is not"),
        ({"TOCSIN_SMTP_URL": f"http://{creds}@h", "TOCSIN_EMAIL_FROM": "t@x.io"}, "scheme must be smtp"),
        ({"TOCSIN_SMTP_URL": f"smtp://{creds}@h:port", "TOCSIN_EMAIL_FROM": "t@x.io"}, "bad port"),
        ({"TOCSIN_SMTP_URL": f"smtp://{SMTP_USER}:{SMTP_PASSWORD}@h", "TOCSIN_EMAIL_FROM": "t@x.io"}, "bad port"),
        ({"TOCSIN_SMTP_URL": f"smtp://{creds}@h?starttls=maybe", "TOCSIN_EMAIL_FROM": "t@x.io"}, "starttls must"),
        ({"TOCSIN_SMTP_URL": "smtp://h", "TOCSIN_SMTP_URL_FILE": str(secret_file)}, "not both"),
    ]
    for env, reason in bad:
        with pytest.raises(PermanentDeliveryError, match=reason) as caught:
            SmtpEmail.from_env(env)
        assert_secret_free(caught.value)


async def test_email_page_carries_signed_links_for_the_roster_person_it_reaches() -> None:
    """A page to alice through a real SMTP exchange: her three links survive the transfer encoding and verify
    as alice's; the same page to an address outside the roster carries none (docs/responders/email.md)."""
    roster = Roster.model_validate({"people": {"alice": {"timezone": "UTC", "email": "oncall@example.com"}}})
    links = LinkMaker("link-secret-6b1e", "https://tocsin.example.com", roster)
    handler = MailRecorder()
    page_key = "incident-inc-checkout-1/0123abcd/page/0/1"
    with smtp_server(handler) as port:
        channel = SmtpEmail(SmtpSettings.from_url(f"smtp://127.0.0.1:{port}"), "tocsin@example.com", links=links)
        await channel.send(message(idempotency_key=page_key))
        await channel.send(message(idempotency_key=page_key, target="someone@example.com"))

    mails = [parse(raw) for _, _, raw in handler.delivered]
    parts = [{p.get_content_type(): p.get_content() for p in mail.iter_parts()} for mail in mails]
    urls = [line.split(": ", 1)[1] for line in parts[0]["text/plain"].splitlines() if ": https://" in line]
    tokens = [url.removeprefix("https://tocsin.example.com/api/v1/actions/") for url in urls]
    claims = [verify("link-secret-6b1e", token, message().at.timestamp()) for token in tokens]
    assert [(c.key, c.verb, c.person) for c in claims] == [
        ("inc-checkout-1", verb, "alice") for verb in ("acknowledge", "escalate", "resolve")
    ]
    assert all(f"href='{url}'" in parts[0]["text/html"] for url in urls)
    assert "/api/v1/actions/" not in parts[1]["text/plain"] + parts[1]["text/html"]
