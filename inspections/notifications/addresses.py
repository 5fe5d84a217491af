"""Where webhooks may point: public internet addresses only, unless allowed otherwise.

A coordinator's webhook URL is fetched by our servers, so it must not reach what only our
servers can reach (databases, cloud metadata at 169.254.169.254, admin ports on
localhost). The host is resolved and every address checked, at registration and again
before each delivery (DNS may change in between). A delivery then connects to the address
it checked (``checked_addresses``), never resolving the name again: a name answering a
public address to the check and a private one to the connection (DNS rebinding) gets
nowhere. IPv6 forms embedding an IPv4 address (NAT64, 6to4, IPv4-mapped/compatible) are
judged by that IPv4 address; Teredo and local-use NAT64 are refused outright.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from typing import Any

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # well-known prefix: the last 32 bits are IPv4
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")  # local-use: any mapping, refused
_TEREDO = ipaddress.IPv6Network("2001::/32")  # the client address is obfuscated: refused
_COMPATIBLE = ipaddress.IPv6Network("::/96")  # deprecated IPv4-compatible form


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped:
        return ip.ipv4_mapped
    if ip in _NAT64 or ip in _COMPATIBLE:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour  # 2002::/16, or None


def is_public(address: str) -> bool:
    """True for globally routable unicast addresses (not private, loopback, link-local,
    shared CGNAT, reserved, multicast or unspecified), and for IPv6 translations only when
    the IPv4 address they carry is."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _NAT64_LOCAL or ip in _TEREDO:
            return False
        v4 = _embedded_v4(ip)
        if v4 is not None:
            return is_public(str(v4))
    return ip.is_global and not ip.is_multicast


Lookup = Callable[[str, int], Awaitable[list[Any]]]


async def _system_lookup(host: str, port: int) -> list[Any]:
    return await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)


# The one resolver the check uses (a test may put its own DNS answers here).
lookup: Lookup = _system_lookup


async def checked_addresses(
    host: str, port: int, allow_private: bool
) -> tuple[str | None, list[str]]:
    """(why a webhook may not be sent to this host, or None; the addresses checked, in the
    resolver's order). A delivery connects to one of these addresses and no other."""
    try:
        infos = await lookup(host, port)
    except OSError:
        return f"host {host!r} does not resolve", []
    found = list(dict.fromkeys(str(i[4][0]) for i in infos))
    if not found:
        return f"host {host!r} does not resolve", []
    if not allow_private:
        private = sorted(a for a in found if not is_public(a))
        if private:
            why = f"host {host!r} resolves to a non-public address ({', '.join(private)})"
            return why, found
    return None, found


async def refusal(host: str, port: int, allow_private: bool) -> str | None:
    """Why a webhook may not be sent to this host, or None when it may."""
    if allow_private:
        return None
    return (await checked_addresses(host, port, allow_private))[0]
