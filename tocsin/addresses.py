"""What kind of network address a host name or URL is, for the checks that depend on it. Pure: no DNS lookups."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def is_loopback(host: str) -> bool:
    """`localhost`, 127.0.0.0/8 or ::1 (brackets allowed, as in a URL's host)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_http_url(value: str) -> bool:
    """An absolute http(s) URL with a host, and a valid port if it names one: the one check every setting
    that names a URL (a channel's endpoint, the LLM's base URL, Prometheus) goes through."""
    parts = urlsplit(value)
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number or out of range
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)
