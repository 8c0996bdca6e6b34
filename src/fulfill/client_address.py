"""Who is asking: the address a request came from, and a proxy's word for it only when the proxy
is one the operator named (``FULFILL_TRUSTED_PROXIES``). Anyone can write ``X-Forwarded-For``; a
rate limit keyed on it unchecked is a limit anyone can step around."""

from __future__ import annotations

from functools import cache
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network

from starlette.requests import Request

Network = IPv4Network | IPv6Network


@cache
def networks(trusted: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ip_network(entry.strip(), strict=False) for entry in trusted if entry.strip())


def _is_trusted(address: str, trusted: tuple[Network, ...]) -> bool:
    try:
        ip = ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def client_address(request: Request, trusted_proxies: tuple[str, ...]) -> str:
    """The peer's address; behind trusted proxies, the nearest address in ``X-Forwarded-For``
    that is not one of them (the ones further left were written by whoever sent the request)."""
    peer = request.client.host if request.client else "unknown"
    trusted = networks(trusted_proxies)
    if not trusted or not _is_trusted(peer, trusted):
        return peer
    hops = [hop.strip() for hop in request.headers.get("x-forwarded-for", "").split(",")]
    for hop in reversed([h for h in hops if h]):
        if not _is_trusted(hop, trusted):
            return hop
    return peer
