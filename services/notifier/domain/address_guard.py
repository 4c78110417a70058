"""Outbound safety: a webhook target must resolve to public addresses only (no SSRF into the private network)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable


class UnsafeTarget(ValueError):
    """A webhook target that resolves somewhere it must not (loopback, private, link-local, ...)."""


def check_addresses(host: str, addresses: Iterable[str], allow_private: bool) -> None:
    """Every address the host resolves to must be public; one private answer is enough to refuse (DNS rebinding)."""
    resolved = list(addresses)
    if not resolved:
        raise UnsafeTarget(f"webhook host {host!r} does not resolve")
    if allow_private:
        return
    for address in resolved:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if not ip.is_global or ip.is_multicast:
            raise UnsafeTarget(f"webhook host {host!r} resolves to {ip}, a non-public address; set WEBHOOK_ALLOW_PRIVATE=1 to allow it")
