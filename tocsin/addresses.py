"""What kind of network address a host name or URL is, for the checks that depend on it, and a URL fit to show.
Pure: no DNS lookups."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit, urlunsplit


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


def redact(url: str) -> str:
    """`url` fit for a message or a log line: without its user and password, query or fragment (any of them
    may hold a secret), but with its scheme, host, port and path, so an operator can tell where it points.
    Without a host nothing in it can be told apart from a secret ("user:password@prom:9090" parses as scheme
    "user" and path "password@prom:9090"), so none of it is shown."""
    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        return "[redacted]"
    if ":" in host:  # urlsplit unbrackets an IPv6 address; a URL needs the brackets back
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:  # a malformed port is shown as absent rather than failing the message about it
        port = None
    netloc = f"{host}:{port}" if port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
