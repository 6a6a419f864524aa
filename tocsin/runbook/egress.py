"""Where an `http` step may send: never to a loopback, link-local or cloud metadata address unless its policy
step says so (`allow_loopback`, `allow_link_local`).

The host is resolved here and every address it resolves to is checked; the request then goes to the address
that was checked, with the host name kept for the Host header and for TLS (SNI and the certificate check). So a
name that resolves elsewhere a moment later (DNS rebinding) cannot reach what was refused. Messages never name
the host or the address: a URL base read from the worker's environment is a secret (tocsin.runbook.http_action).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address, ip_address
from urllib.parse import urlsplit, urlunsplit

from tocsin.runbook.errors import PermanentRemediationError, RetryableRemediationError

# The instance metadata services of the clouds: a request there reads the worker's own cloud credentials.
METADATA_HOSTS = frozenset(
    {"metadata.google.internal", "metadata.goog", "metadata", "instance-data", "instance-data.ec2.internal"}
)
METADATA_ADDRESSES = frozenset(
    ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OCI, DigitalOcean, OpenStack
        "169.254.170.2",  # AWS ECS task credentials
        "fd00:ec2::254",  # AWS over IPv6
        "100.100.100.200",  # Alibaba Cloud
    )
)
FORBIDDEN = "ForbiddenDestination"

Address = IPv4Address | IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def address_problem(address: Address, *, allow_loopback: bool, allow_link_local: bool) -> str | None:
    """What kind of forbidden address this is (and which flag allows it), or None when it may be reached."""
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if address in METADATA_ADDRESSES:
        return None if allow_link_local else "a cloud metadata address (allow_link_local)"
    if address.is_loopback or address.is_unspecified:  # 0.0.0.0 reaches this host too
        return None if allow_loopback else "a loopback address (allow_loopback)"
    if address.is_link_local:
        return None if allow_link_local else "a link-local address (allow_link_local)"
    return None


@dataclass(frozen=True)
class Destination:
    """The request's URL with its host replaced by the checked address, and what keeps the host name."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, str] = field(default_factory=dict)


async def checked_destination(
    url: str,
    shown: str,
    *,
    allow_loopback: bool = False,
    allow_link_local: bool = False,
    resolver: Resolver | None = None,
) -> Destination:
    """Resolve and check `url`'s host; PermanentRemediationError (ForbiddenDestination) for a forbidden one.
    `shown` is how errors name the request (the URL as the plan wrote it, without the secret base)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if host in METADATA_HOSTS and not allow_link_local:
        message = f"{shown}: refused: the host is a cloud metadata host (allow_link_local)"
        raise PermanentRemediationError(message, FORBIDDEN)
    try:
        addresses: list[Address] = [ip_address(host)]
        named = False
    except ValueError:
        named = True
        try:
            addresses = [ip_address(a.split("%", 1)[0]) for a in await (resolver or system_resolver)(host, port)]
        except OSError as err:
            message = f"{shown}: the host does not resolve ({type(err).__name__})"
            raise RetryableRemediationError(message, "EndpointUnavailable") from None
    if not addresses:
        raise RetryableRemediationError(f"{shown}: the host resolves to no address", "EndpointUnavailable")
    for address in addresses:
        problem = address_problem(address, allow_loopback=allow_loopback, allow_link_local=allow_link_local)
        if problem:
            raise PermanentRemediationError(f"{shown}: refused: the host is {problem}", FORBIDDEN)
    pinned = addresses[0]
    literal = f"[{pinned}]" if isinstance(pinned, IPv6Address) else str(pinned)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = (f"{userinfo}@" if userinfo else "") + literal + (f":{parts.port}" if parts.port else "")
    if not named:
        return Destination(url=url)
    host_header = parts.netloc.rpartition("@")[2]
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    return Destination(
        url=urlunsplit(parts._replace(netloc=netloc)), headers={"Host": host_header}, extensions=extensions
    )
