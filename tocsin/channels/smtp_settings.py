"""Where the email channel connects and how: `TOCSIN_SMTP_URL` parsed into SmtpSettings.

`smtp://user:pass@host:port` (STARTTLS when the server offers it) or `smtps://...` (TLS from the first byte).
User and password are percent-decoded. Query options: `starttls=auto` (the default), `require` (refuse a server
that does not offer it) or `never` (plaintext; the only way to log in without TLS); `helo=NAME` (the EHLO name;
default this host's FQDN); `timeout=SECONDS` (default 10). Ports default to 587 (`smtp`) and 465 (`smtps`).
Errors name the variable and the fault, never the URL: it holds the credentials.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

from tocsin.channels.base import PermanentDeliveryError

StartTLS = Literal["auto", "require", "never"]
DEFAULT_PORTS = {"smtp": 587, "smtps": 465}
DEFAULT_TIMEOUT = 10.0


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
