"""Bearer tokens and HMAC-SHA256 signatures, compared in constant time. Nothing here logs or echoes a secret.

Signature scheme (for senders that can sign, e.g. scripts and CI jobs):

    X-Tocsin-Timestamp: <unix seconds>
    X-Tocsin-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>" with TOCSIN_INGEST_HMAC_SECRET>

A timestamp more than five minutes away from the receiver's clock, past or future, is refused, so a captured
request cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import SecretStr

from tocsin.receiver.config import Credentials

TIMESTAMP_HEADER = "X-Tocsin-Timestamp"
SIGNATURE_HEADER = "X-Tocsin-Signature"

_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"sha256=([0-9a-fA-F]{64})")


class Unauthorized(Exception):
    """Missing or wrong credentials. The message says which, never what was expected."""


def _bytes(secret: SecretStr) -> bytes:
    return secret.get_secret_value().encode("utf-8")


def sign(secret: str | bytes, timestamp: str | int, body: bytes) -> str:
    """The X-Tocsin-Signature value a sender computes (also used by the tests)."""
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    digest = hmac.new(key, str(timestamp).encode("ascii") + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def challenge(creds: Credentials) -> str:
    """The WWW-Authenticate value: the schemes this endpoint accepts."""
    schemes = []
    if creds.token:
        schemes.append('Bearer realm="tocsin"')
    if creds.hmac_secret or not schemes:
        schemes.append(f'Tocsin-HMAC-SHA256 realm="tocsin", headers="{TIMESTAMP_HEADER} {SIGNATURE_HEADER}"')
    return ", ".join(schemes)


@dataclass(frozen=True)
class PendingSignature:
    """Headers checked; the signature can only be verified once the body has been read."""

    secret: SecretStr
    timestamp: str
    signature: str

    def verify(self, body: bytes) -> None:
        expected = sign(_bytes(self.secret), self.timestamp, body)[len("sha256=") :]
        if not hmac.compare_digest(expected.encode("ascii"), self.signature.lower().encode("ascii")):
            raise Unauthorized("invalid signature")


def authorize_headers(
    creds: Credentials, headers: Mapping[str, str], now: float, window: float
) -> PendingSignature | None:
    """Check what can be checked before reading the body.

    Returns None when a bearer token authenticated the request, or the signature check still to run on the
    body. A request presenting a bearer token is judged by it alone; otherwise it must be signed.
    """
    authorization = headers.get("authorization")
    if authorization is not None:
        scheme, _, presented = authorization.partition(" ")
        if scheme.lower() == "bearer":
            if creds.token is None:
                raise Unauthorized("bearer tokens are not accepted on this endpoint")
            if not hmac.compare_digest(presented.strip().encode("utf-8"), _bytes(creds.token)):
                raise Unauthorized("invalid bearer token")
            return None
    timestamp = headers.get(TIMESTAMP_HEADER.lower())
    signature = headers.get(SIGNATURE_HEADER.lower())
    if timestamp is None and signature is None:
        ways = []
        if creds.token or not creds.hmac_secret:
            ways.append("Authorization: Bearer")
        if creds.hmac_secret or not creds.token:
            ways.append(f"{TIMESTAMP_HEADER} and {SIGNATURE_HEADER}")
        raise Unauthorized(f"missing credentials: send {', or '.join(ways)}")
    if creds.hmac_secret is None:
        raise Unauthorized("signed requests are not accepted on this endpoint")
    if timestamp is None or not _TIMESTAMP.fullmatch(timestamp):
        raise Unauthorized(f"{TIMESTAMP_HEADER} must be the current time in unix seconds")
    match = _SIGNATURE.fullmatch(signature or "")
    if match is None:
        raise Unauthorized(f"{SIGNATURE_HEADER} must be sha256=<64 hex digits>")
    if abs(now - int(timestamp)) > window:
        raise Unauthorized(f"{TIMESTAMP_HEADER} is more than {window:.0f} seconds from the receiver's clock")
    return PendingSignature(creds.hmac_secret, timestamp, match.group(1))


def routing_key_known(keys: tuple[SecretStr, ...], presented: str) -> bool:
    """Compare against every configured key, in constant time for each, without stopping at a match."""
    given = presented.encode("utf-8")
    found = False
    for key in keys:
        found |= hmac.compare_digest(given, _bytes(key))
    return found
