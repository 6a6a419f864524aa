"""HTTPS for the receiver: `TOCSIN_HTTP_TLS_CERT` and `TOCSIN_HTTP_TLS_KEY`, the paths of a PEM certificate
(chain, leaf first) and its unencrypted PEM private key. Both set: the receiver serves HTTPS only, TLS 1.2 or
newer. Neither: plain HTTP, as before. Anything else (one without the other, a file that cannot be read, a key
that is not the certificate's) stops the receiver before it listens, with one line naming the variable and the
path, never the key's contents.

There is no `NAME_FILE` form: the value already is a file's path, so a mounted Docker or Kubernetes secret is
named directly. A `TOCSIN_HTTP_TLS_CERT_FILE` or `TOCSIN_HTTP_TLS_KEY_FILE` is refused rather than ignored, so a
misnamed variable cannot silently leave the receiver on plain HTTP.
"""

from __future__ import annotations

import re
import ssl
from pathlib import Path

from tocsin.receiver.config import TLS_CERT_VARIABLE as CERT_VARIABLE
from tocsin.receiver.config import TLS_KEY_VARIABLE as KEY_VARIABLE
from tocsin.receiver.config import ReceiverConfig, ReceiverError

MINIMUM_VERSION = ssl.TLSVersion.TLSv1_2

_PEM_CERT = re.compile(r"-----BEGIN CERTIFICATE-----")
_PEM_KEY = re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----")


def _no_password() -> bytes:
    # Without a callback OpenSSL would prompt on the terminal for an encrypted key's passphrase.
    return b""


def _read(path: Path, name: str) -> str:
    try:
        return path.read_text(encoding="ascii", errors="replace")
    except OSError as err:
        raise ReceiverError(f"{name}: cannot read {path}: {err.strerror or err}") from None


def server_context(config: ReceiverConfig) -> ssl.SSLContext | None:
    """The receiver's TLS context, or None for plain HTTP; ReceiverError when the settings cannot serve HTTPS."""
    cert, key = config.tls_cert, config.tls_key
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        missing, given = (CERT_VARIABLE, KEY_VARIABLE) if cert is None else (KEY_VARIABLE, CERT_VARIABLE)
        raise ReceiverError(f"{given} is set but {missing} is not: HTTPS needs both (neither serves plain HTTP)")
    if not _PEM_CERT.search(_read(cert, CERT_VARIABLE)):
        raise ReceiverError(f"{CERT_VARIABLE}: {cert} holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
    key_text = _read(key, KEY_VARIABLE)
    if not _PEM_KEY.search(key_text):
        raise ReceiverError(f"{KEY_VARIABLE}: {key} holds no PEM private key (-----BEGIN ... PRIVATE KEY-----)")
    if "ENCRYPTED" in key_text:
        raise ReceiverError(f"{KEY_VARIABLE}: {key} is encrypted; the receiver needs an unencrypted key")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = MINIMUM_VERSION
    context.set_alpn_protocols(["http/1.1"])
    try:
        context.load_cert_chain(cert, key, password=_no_password)
    except ssl.SSLError as err:
        if err.reason == "KEY_VALUES_MISMATCH":
            raise ReceiverError(
                f"{KEY_VARIABLE}: {key} is not the private key of the certificate in {CERT_VARIABLE} ({cert})"
            ) from None
        raise ReceiverError(
            f"cannot use {CERT_VARIABLE} ({cert}) with {KEY_VARIABLE} ({key}): {err.reason or 'not valid PEM'}"
        ) from None
    except OSError as err:  # removed or made unreadable since it was read above
        raise ReceiverError(f"cannot read {CERT_VARIABLE} ({cert}) or {KEY_VARIABLE} ({key}): {err}") from None
    return context
