"""Where a webhook may go: a guard against server-side request forgery.

A user names their own webhook URL, so without a guard anybody could make
the server POST into its own network (the metrics port, a cloud metadata
endpoint, a database's HTTP API). Only http(s) URLs are sent, and only to
public addresses: the name is resolved here, every address it resolves to
must be global unicast, and the request then goes to the vetted address
itself (the URL's host stays in ``Host`` and in TLS SNI and certificate
checks), so a name that re-resolves elsewhere between check and connect
(DNS rebinding) gains nothing. ``allow_private`` lifts the address rule,
for receivers inside the same network on purpose (and for tests).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit


class Refused(Exception):
    """The URL is not one the server will send to (permanent)."""


class Unresolved(Exception):
    """The name did not resolve now (transient: DNS may answer later)."""


@dataclass(frozen=True, slots=True)
class Destination:
    url: str  # with the vetted address in place of the host
    host: str  # the URL's own host, for Host and SNI
    address: str


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


async def vet(url: str, *, allow_private: bool) -> Destination:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise Refused("webhook URL must be http:// or https://")
    host = parts.hostname
    if not host:
        raise Refused("webhook URL names no host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise Refused("webhook URL has a bad port") from None
    try:
        literal = ipaddress.ip_address(host)
        addresses = [literal]
    except ValueError:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except OSError:
            raise Unresolved(f"could not resolve {host[:100]}") from None
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    if not addresses:
        raise Unresolved(f"could not resolve {host[:100]}")
    if not allow_private:
        for address in addresses:
            if not _public(address):
                raise Refused(
                    "webhook URL resolves to a loopback, private or link-local address "
                    "(NOTIFY_WEBHOOK_ALLOW_PRIVATE=true allows it)"
                )
    chosen = addresses[0]
    netloc = f"[{chosen}]" if chosen.version == 6 else str(chosen)
    if parts.port:
        netloc += f":{parts.port}"
    pinned = parts._replace(netloc=netloc).geturl()
    return Destination(pinned, parts.netloc.rpartition("@")[2], str(chosen))
