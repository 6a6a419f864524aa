"""What every vendor adapter needs to read its configuration and keep its secrets out of messages.

`setting` reads `NAME` or the file `NAME_FILE` points to (Docker and Kubernetes secrets), `http_url` checks a
URL without echoing it, `redact` takes secrets out of a vendor's answer, `host_of` names where a URL points
without its path or credentials. Each raises the adapters' PermanentDeliveryError, so a delivery with a
setting that cannot be used fails for good, naming the variable and never a value. Here rather than in one
vendor's adapter, so that using them loads no vendor's code.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from tocsin.addresses import is_http_url
from tocsin.channels.base import PermanentDeliveryError
from tocsin.secret_settings import SecretSettingError, read_setting


def setting(env: Mapping[str, str], name: str) -> str | None:
    """`NAME`, or the contents of the file `NAME_FILE` names (tocsin.secret_settings); None when neither is
    set. A setting that cannot be used fails the delivery for good, naming the variable, never a value."""
    try:
        return read_setting(env, name)
    except SecretSettingError as err:
        raise PermanentDeliveryError(str(err)) from None


def http_url(value: str, name: str) -> str:
    """An absolute http(s) URL, or a PermanentDeliveryError naming the variable (not the value)."""
    if not is_http_url(value):
        raise PermanentDeliveryError(f"{name}: not an absolute http(s) URL")
    return value


def redact(text: str, *secrets: str | None) -> str:
    """`text` with every non-empty secret replaced: for vendor answers that might echo what they were sent."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text


def host_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)
