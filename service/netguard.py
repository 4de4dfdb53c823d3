"""The SSRF guard: may Atelier open a connection to this URL?

Owns: parsing a URL, resolving its host once, and refusing it unless every address it
resolves to is publicly routable (loopback, private, link-local, multicast, reserved,
carrier-grade NAT, NAT64 and IPv6-embedded forms of those are refused), and the `Target`
(the checked addresses) that a caller must connect to, pinned, so a DNS answer that changes
between check and connect cannot redirect it. Used by webhook delivery and by asset URLs.
Must never connect anywhere itself, and never import anything from `service` but errors.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

log = logging.getLogger("atelier.netguard")
Resolver = Callable[..., list]


def not_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why `ip` is not a publicly routable unicast address, or None when it is."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            reason = not_public(embedded)
            return f"IPv6-embedded {reason}" if reason else None
        if ip in _NAT64_LOCAL:
            return "local-use NAT64"
        if ip.is_site_local:
            return "site-local"
    checks = (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
        ("shared (carrier-grade NAT)", isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED),
    )
    for name, hit in checks:
        if hit:
            return name
    if not ip.is_global:
        return "non-global"
    return None


_SHARED = ipaddress.IPv4Network("100.64.0.0/10")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")


@dataclass(frozen=True)
class Target:
    parts: SplitResult
    host: str  # lower-case, IDNA (ASCII), no brackets
    port: int
    addresses: tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, ...]


def check_target(url: str, *, allow_private: bool, resolve: Resolver, refuse: Callable[[str], Exception],
                 label: str = "url", max_length: int = 2048) -> Target:
    """Parse, validate and resolve `url` once; every address it resolves to has been checked.
    A refusal raises `refuse(message)`; `label` names the URL in the message."""

    def _refuse(message: str) -> Exception:
        return refuse(message.replace("webhook_url", label))

    if not isinstance(url, str) or not url:
        raise _refuse("webhook_url must be a non-empty string")
    if len(url) > max_length:
        raise _refuse(f"webhook_url is longer than {max_length} characters")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise _refuse("webhook_url must not contain whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise _refuse("webhook_url is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise _refuse("webhook_url must use https")
    if scheme == "http" and not allow_private:
        raise _refuse("webhook_url must use https (plain http is not allowed)")
    if "@" in parts.netloc:
        raise _refuse("webhook_url must not contain a user name or password")
    host = parts.hostname or ""
    if not host:
        raise _refuse("webhook_url has no host")
    try:
        host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        raise _refuse("webhook_url host is not a valid host name") from None
    port = port or (443 if scheme == "https" else 80)
    try:
        infos = resolve(host, port, 0, socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError):
        raise _refuse(f"webhook_url host {host!r} does not resolve") from None
    addresses: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for info in infos or ():
        try:
            address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        except (ValueError, IndexError, TypeError):
            raise _refuse(f"webhook_url host {host!r} resolves to an unusable address") from None
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise _refuse(f"webhook_url host {host!r} does not resolve")
    if not allow_private:
        for address in addresses:
            reason = not_public(address)
            if reason:
                # The address itself goes to the operator's log only, not back to the caller.
                log.info("url refused", extra={"fields": {"host": host, "address": str(address),
                                                                  "reason": reason}})
                raise _refuse(f"webhook_url host {host!r} resolves to a {reason} address; "
                              "only publicly routable addresses are allowed")
    return Target(parts=parts, host=host.lower(), port=port, addresses=tuple(addresses))
