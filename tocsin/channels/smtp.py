"""Email over SMTP: a text and an HTML part, a Message-ID that is the same on every retry of a delivery.

Configuration (each may instead be read from the file `NAME_FILE` names):

- `TOCSIN_SMTP_URL`: `smtp://user:pass@host:port` (STARTTLS when the server offers it) or `smtps://...` (TLS
  from the first byte). User and password are percent-decoded. Query options: `starttls=auto` (the default),
  `require` (refuse a server that does not offer it) or `never` (plaintext; the only way to log in without TLS);
  `helo=NAME` (the EHLO name; default this host's FQDN); `timeout=SECONDS` (default 10). Ports default to 587
  (`smtp`) and 465 (`smtps`).
- `TOCSIN_EMAIL_FROM`: the envelope and header sender.

The subject is one line (tocsin.channels.escaping.email_subject), the text part has no control characters and
the HTML part is HTML-escaped. The target is one address or several, comma-separated. smtplib runs in a thread
so the worker's event loop never blocks. A retried delivery sends the same message again with the same `Message-ID`
(`<sha256(idempotency key)[:32]@tocsin>`), which mail stores and clients use to fold the repeat into one.

SMTP replies map onto the delivery errors: 5xx (535 authentication failure included) is permanent, 4xx and a
dropped or refused connection or a timeout retry. Neither the user name (some providers use the API token as
both) nor the password ever appears in an error or a log line.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import logging
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses
from typing import ClassVar, Literal
from urllib.parse import parse_qs, unquote, urlsplit

from tocsin.channels.base import DeliveryError, Message, PermanentDeliveryError, Receipt, RetryableDeliveryError
from tocsin.channels.escaping import email_subject, plain_text
from tocsin.channels.vendor_settings import redact, setting

log = logging.getLogger("tocsin.channels.email")

VENDOR = "email"
StartTLS = Literal["auto", "require", "never"]
DEFAULT_PORTS = {"smtp": 587, "smtps": 465}
DEFAULT_TIMEOUT = 10.0


def message_id(idempotency_key: str) -> str:
    """The delivery's Message-ID: the same for every attempt, different for every delivery."""
    return f"<{hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]}@tocsin>"


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to connect. `repr` shows the server, never the credentials."""

    host: str
    port: int
    implicit_tls: bool = False
    starttls: StartTLS = "auto"
    username: str | None = None
    password: str | None = None
    helo: str | None = None
    timeout: float = DEFAULT_TIMEOUT

    def __repr__(self) -> str:
        scheme = "smtps" if self.implicit_tls else "smtp"
        auth = ", with credentials" if self.username else ""
        return f"SmtpSettings({scheme}://{self.host}:{self.port}, starttls={self.starttls}{auth})"

    @classmethod
    def from_url(cls, url: str, variable: str = "TOCSIN_SMTP_URL") -> SmtpSettings:
        """Parse `smtp://` or `smtps://`. Errors name the variable and the fault, never the URL (it has secrets)."""
        try:
            parts = urlsplit(url.strip())
            port = parts.port
        except ValueError:
            raise PermanentDeliveryError(f"{variable}: not a valid URL (bad port or brackets)") from None
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS:
            raise PermanentDeliveryError(f"{variable}: the scheme must be smtp:// or smtps://, not {scheme or 'none'}")
        if not parts.hostname:
            raise PermanentDeliveryError(f"{variable}: no host")
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        unknown = set(query) - {"starttls", "helo", "timeout"}
        if unknown:
            raise PermanentDeliveryError(f"{variable}: unknown option(s) {', '.join(sorted(unknown))}")
        starttls = query.get("starttls", "auto")
        if starttls not in ("auto", "require", "never"):
            raise PermanentDeliveryError(f"{variable}: starttls must be auto, require or never")
        if scheme == "smtps" and "starttls" in query:
            raise PermanentDeliveryError(f"{variable}: smtps:// is TLS from the start; starttls does not apply")
        try:
            timeout = float(query.get("timeout", DEFAULT_TIMEOUT))
        except ValueError:
            raise PermanentDeliveryError(f"{variable}: timeout must be a number of seconds") from None
        if timeout <= 0:
            raise PermanentDeliveryError(f"{variable}: timeout must be positive")
        username = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password is not None else None
        if password and not username:
            raise PermanentDeliveryError(f"{variable}: a password without a user")
        return cls(
            host=parts.hostname,
            port=port or DEFAULT_PORTS[scheme],
            implicit_tls=scheme == "smtps",
            starttls=starttls,  # type: ignore[arg-type]  # checked above
            username=username,
            password=password or None,
            helo=query.get("helo") or None,
            timeout=timeout,
        )


class SmtpEmail:
    """The `email` channel. `ssl_context` replaces the system's trust store (for a private CA, or tests)."""

    name = "email"
    # One SMTP relay per adapter: a small gap so a burst does not trip the relay's per-client limits.
    min_interval: ClassVar[float] = 0.2

    def __init__(self, settings: SmtpSettings, sender: str, *, ssl_context: ssl.SSLContext | None = None) -> None:
        if not sender or "@" not in sender:
            raise PermanentDeliveryError("TOCSIN_EMAIL_FROM: not an email address")
        self.settings = settings
        self.sender = sender
        self._ssl = ssl_context or ssl.create_default_context()

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
        return cls(SmtpSettings.from_url(url), sender)

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
        text = plain_text(message.text) + "\n\n" + "\n".join(f"{k}: {plain_text(v)}" for k, v in facts) + "\n"
        mail.set_content(text)
        rows = "".join(f"<tr><th align='left'>{k}</th><td>{html.escape(v)}</td></tr>" for k, v in facts)
        body = "<br>".join(html.escape(line) for line in message.text.splitlines())
        heading = f"<h2>{html.escape(message.title)}</h2>" if message.title else ""
        mail.add_alternative(
            f"<!DOCTYPE html><html><body>{heading}<p>{body}</p><table>{rows}</table></body></html>\n",
            subtype="html",
        )
        return mail

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
