"""Email over SMTP: a text and an HTML part, a Message-ID that is the same on every retry of a delivery.

Configuration (each may instead be read from the file `NAME_FILE` names): `TOCSIN_SMTP_URL`, where to connect
and how (tocsin.channels.smtp_settings), and `TOCSIN_EMAIL_FROM`, the envelope and header sender.

The subject is one line (tocsin.channels.escaping.email_subject), the text part has no control characters and
the HTML part is HTML-escaped. The target is one address or several, comma-separated. smtplib runs in a thread
so the worker's event loop never blocks. A retried delivery sends the same message again with the same `Message-ID`
(`<sha256(idempotency key)[:32]@tocsin>`), which mail stores and clients use to fold the repeat into one.

SMTP replies map onto the delivery errors: 5xx (535 authentication failure included) is permanent, 4xx and a
dropped or refused connection or a timeout retry. Neither the user name (some providers use the API token as
both) nor the password ever appears in an error or a log line.

Action links (docs/responders/email.md): with `TOCSIN_ACTION_LINK_SECRET` and `TOCSIN_PUBLIC_URL` set, a page
to one address that the worker's own policy (`TOCSIN_POLICY`) has in its roster carries signed Acknowledge,
Escalate and Resolve links for that person (tocsin.responders.links). The roster comes from the worker's
policy, never from the message: a workflow cannot make the channel sign for anyone.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import logging
import smtplib
import ssl
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses
from pathlib import Path
from typing import ClassVar

from tocsin.bundled import DEFAULT_POLICY
from tocsin.channels.base import DeliveryError, Message, PermanentDeliveryError, Receipt, RetryableDeliveryError
from tocsin.channels.escaping import email_subject, plain_text
from tocsin.channels.smtp_settings import SmtpSettings
from tocsin.channels.vendor_settings import redact, setting
from tocsin.policy.loader import PolicyError, load_policy
from tocsin.responders.links import ActionLink, LinkMaker, is_page

log = logging.getLogger("tocsin.channels.email")

VENDOR = "email"


def message_id(idempotency_key: str) -> str:
    """The delivery's Message-ID: the same for every attempt, different for every delivery."""
    return f"<{hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]}@tocsin>"


class SmtpEmail:
    """The `email` channel. `ssl_context` replaces the system's trust store (for a private CA, or tests)."""

    name = "email"
    # One SMTP relay per adapter: a small gap so a burst does not trip the relay's per-client limits.
    min_interval: ClassVar[float] = 0.2

    def __init__(
        self,
        settings: SmtpSettings,
        sender: str,
        *,
        ssl_context: ssl.SSLContext | None = None,
        links: LinkMaker | None = None,
    ) -> None:
        if not sender or "@" not in sender:
            raise PermanentDeliveryError("TOCSIN_EMAIL_FROM: not an email address")
        self.settings = settings
        self.sender = sender
        self._ssl = ssl_context or ssl.create_default_context()
        self.links = links

    def __repr__(self) -> str:
        return f"SmtpEmail({self.settings!r}, from={self.sender})"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SmtpEmail | None:
        """None when TOCSIN_SMTP_URL is unset; PermanentDeliveryError when it is set but unusable."""
        url = setting(env, "TOCSIN_SMTP_URL")
        if not url:
            return None
        sender = setting(env, "TOCSIN_EMAIL_FROM")
        if not sender:
            raise PermanentDeliveryError("TOCSIN_SMTP_URL is set but TOCSIN_EMAIL_FROM is not")
        return cls(SmtpSettings.from_url(url), sender, links=link_maker(env))

    async def send(self, message: Message) -> Receipt:
        recipients = [addr for _, addr in getaddresses([message.target]) if addr]
        if not recipients or any("@" not in addr for addr in recipients):
            raise PermanentDeliveryError(f"{VENDOR}: target {message.target!r} is not a list of email addresses")
        mail = self.compose(message, recipients)
        refused = await asyncio.to_thread(self._deliver, mail, recipients)
        if refused:
            # Some recipients took it: a retry would send the others a second copy, so this is delivered.
            log.warning("%s %s: refused by the server for %s", VENDOR, mail["Message-ID"], ", ".join(sorted(refused)))
        return Receipt(provider_id=str(mail["Message-ID"]))

    async def check(self) -> str:
        """Connect, EHLO, STARTTLS (as configured), log in, QUIT: nothing is sent."""
        tls = await asyncio.to_thread(self._probe)
        auth = "authenticated" if self.settings.username else "no authentication"
        return f"{VENDOR}: {self.settings.host}:{self.settings.port} ({tls}, {auth}), from {self.sender}"

    def compose(self, message: Message, recipients: list[str]) -> EmailMessage:
        first_line = message.text.strip().splitlines()[0] if message.text.strip() else ""
        prefix = f"[{message.severity}] " if message.severity else ""
        mail = EmailMessage()
        # Headers are one line each, whatever the title holds: no `\r\nBcc:` can start a header of its own.
        mail["Subject"] = email_subject(f"{prefix}{message.title or first_line or message.incident}")
        mail["From"] = self.sender
        mail["To"] = ", ".join(recipients)
        mail["Date"] = format_datetime(message.at)
        mail["Message-ID"] = message_id(message.idempotency_key)
        mail["X-Tocsin-Incident"] = email_subject(message.incident, limit=200)
        facts = [
            ("Incident", message.incident),
            ("Severity", message.severity),
            ("Service", message.service),
            ("Status", message.status),
        ]
        facts = [(k, v) for k, v in facts if v]
        links = self._links(message, recipients)
        text = plain_text(message.text) + "\n\n" + "\n".join(f"{k}: {plain_text(v)}" for k, v in facts) + "\n"
        text += "".join(f"\n{link.label}: {link.url}" for link in links) + ("\n" if links else "")
        mail.set_content(text)
        rows = "".join(f"<tr><th align='left'>{k}</th><td>{html.escape(v)}</td></tr>" for k, v in facts)
        body = "<br>".join(html.escape(line) for line in message.text.splitlines())
        heading = f"<h2>{html.escape(message.title)}</h2>" if message.title else ""
        anchors = " | ".join(f"<a href='{html.escape(a.url)}'>{html.escape(a.label)}</a>" for a in links)
        actions = f"<p>{anchors}</p>" if links else ""
        mail.add_alternative(
            f"<!DOCTYPE html><html><body>{heading}<p>{body}</p><table>{rows}</table>{actions}</body></html>\n",
            subtype="html",
        )
        return mail

    def _links(self, message: Message, recipients: list[str]) -> list[ActionLink]:
        """Links for a page to one person. A mail to several addresses carries none: each of them could click
        a link signed for the other, and act in their name."""
        if self.links is None or len(recipients) != 1 or not is_page(message.incident, message.idempotency_key):
            return []
        return self.links.links(message.incident, recipients[0], message.at)

    # --- the blocking part, run in a thread ---

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        if s.implicit_tls:
            return smtplib.SMTP_SSL(s.host, s.port, local_hostname=s.helo, timeout=s.timeout, context=self._ssl)
        return smtplib.SMTP(s.host, s.port, local_hostname=s.helo, timeout=s.timeout)

    def _open(self, smtp: smtplib.SMTP) -> str:
        """EHLO, STARTTLS as configured, then log in. Returns how the connection is protected."""
        s = self.settings
        smtp.ehlo()
        tls = "TLS" if s.implicit_tls else "plaintext"
        if not s.implicit_tls and s.starttls != "never":
            if smtp.has_extn("starttls"):
                smtp.starttls(context=self._ssl)
                smtp.ehlo()
                tls = "STARTTLS"
            elif s.starttls == "require":
                raise PermanentDeliveryError(f"{VENDOR}: {s.host} does not offer STARTTLS (starttls=require)")
        if s.username:
            if tls == "plaintext" and s.starttls != "never":
                raise PermanentDeliveryError(
                    f"{VENDOR}: {s.host} offers no STARTTLS; refusing to send the password in the clear "
                    "(starttls=never allows it)"
                )
            smtp.login(s.username, s.password or "")
        return tls

    def _deliver(self, mail: EmailMessage, recipients: list[str]) -> dict[str, tuple[int, bytes]]:
        try:
            smtp = self._connect()
            try:
                self._open(smtp)
                return smtp.send_message(mail, self.sender, recipients)
            finally:
                _close(smtp)
        except (smtplib.SMTPException, OSError) as err:
            raise _delivery_error(err, self.settings) from None

    def _probe(self) -> str:
        try:
            smtp = self._connect()
            try:
                tls = self._open(smtp)
                smtp.noop()
                return tls
            finally:
                _close(smtp)
        except (smtplib.SMTPException, OSError) as err:
            raise _delivery_error(err, self.settings) from None


def link_maker(env: Mapping[str, str]) -> LinkMaker | None:
    """The action links' settings, with the roster of the worker's own policy; None without the secret."""
    secret = setting(env, "TOCSIN_ACTION_LINK_SECRET")
    if not secret:
        return None
    try:
        roster = load_policy(Path(env.get("TOCSIN_POLICY") or DEFAULT_POLICY)).roster
        return LinkMaker.configured(secret, env.get("TOCSIN_PUBLIC_URL"), env.get("TOCSIN_ACTION_LINK_TTL"), roster)
    except PolicyError as err:
        raise PermanentDeliveryError(f"{VENDOR}: action links need the roster: TOCSIN_POLICY: {err}") from None
    except ValueError as err:
        raise PermanentDeliveryError(f"{VENDOR}: {err}") from None


def _delivery_error(err: smtplib.SMTPException | OSError, settings: SmtpSettings) -> DeliveryError:
    """smtplib's and the socket's exceptions as delivery errors: 4xx retry, 5xx do not; credentials scrubbed out."""

    def scrub(text: str) -> str:
        return redact(text, settings.password, settings.username)

    def reply(code: int, text: bytes | str) -> str:
        words = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
        return scrub(f"{code} {' '.join(words.split())}"[:300])

    def by_code(code: int, reason: str) -> DeliveryError:
        # -1 is smtplib's code for a reply it could not read: the connection broke, so try again.
        if 400 <= code < 500 or code < 0:
            return RetryableDeliveryError(reason)
        return PermanentDeliveryError(reason)

    where = f"{VENDOR}: {settings.host}:{settings.port}"
    if isinstance(err, smtplib.SMTPRecipientsRefused):
        replies = "; ".join(f"{addr}: {reply(code, text)}" for addr, (code, text) in err.recipients.items())
        codes = [code for code, _ in err.recipients.values()]
        worst = next((c for c in codes if 400 <= c < 500), codes[0] if codes else 550)
        return by_code(worst, f"{where} refused every recipient ({replies})")
    if isinstance(err, smtplib.SMTPAuthenticationError):
        # The server's words are not repeated: some echo the (encoded) credentials back.
        return by_code(err.smtp_code, f"{where} rejected the credentials ({err.smtp_code})")
    if isinstance(err, smtplib.SMTPResponseException):
        steps: dict[type[Exception], str] = {
            smtplib.SMTPSenderRefused: "refused the sender",
            smtplib.SMTPDataError: "refused the message",
            smtplib.SMTPConnectError: "refused the connection",
            smtplib.SMTPHeloError: "refused EHLO",
        }
        step = steps.get(type(err), "answered")
        return by_code(err.smtp_code, f"{where} {step}: {reply(err.smtp_code, err.smtp_error)}")
    if isinstance(err, smtplib.SMTPNotSupportedError):
        return PermanentDeliveryError(f"{where}: {scrub(str(err))}")
    if isinstance(err, TimeoutError) or isinstance(err.__context__, TimeoutError):
        # smtplib reports a reply that never came as SMTPServerDisconnected, raised from the socket's timeout.
        return RetryableDeliveryError(f"{where} timed out after {settings.timeout:g}s")
    if isinstance(err, smtplib.SMTPServerDisconnected):
        return RetryableDeliveryError(f"{where} closed the connection")
    if isinstance(err, ssl.SSLCertVerificationError):
        return PermanentDeliveryError(f"{where}: TLS certificate not trusted ({err.verify_message})")
    return RetryableDeliveryError(f"{where} unreachable: {type(err).__name__}")


def _close(smtp: smtplib.SMTP) -> None:
    """QUIT politely; a server that already hung up is not an error once the work is done."""
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()
