"""Before any key is checked: who is the source of a request, and may it be heard at all?

Owns: the client address of a request (`client_address`: the TCP peer, or, only when that peer
is one of `ATELIER_TRUSTED_PROXIES`, the nearest untrusted address of `X-Forwarded-For`, read
right to left) and the scheme it used (`forwarded_scheme`: `X-Forwarded-Proto`, likewise only
from a trusted proxy), and per-source limits that apply before authentication (`SourceGuard`):
requests per minute, and failed authentications per minute after which the source's requests
are refused (429, no database work) until the minute ends, unless the caller vouches for their
key (a valid key passes whatever its source did: `admit(client, vouch)`).

Sources are counted in fixed one-minute windows; an IPv6 source counts by its /64 (one host
holds a whole /64). A peer that is not an IP address (a unix-socket sidecar, an in-process
test client) is one local peer speaking for many clients: it is not limited here. The table is bounded: past `max_sources` sources in a minute, new ones are
not limited (and a warning is logged) rather than sharing one bucket that a spray could fill.
Must never read a body or the registry, nor check a key itself (the caller's `vouch` does).
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from service.errors import AtelierError

log = logging.getLogger("atelier.preauth")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class SourceLimited(AtelierError):
    """429 before authentication: this source sent too much, or failed to authenticate too often."""

    status = 429
    code = "source_rate_limited"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None):
        super().__init__(message, code=code)
        self.retry_after = max(1, retry_after)

    def response_headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


@lru_cache(maxsize=8)
def trusted_networks(cidrs: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def client_address(peer: str | None, forwarded_for: list[str], trusted: tuple[Network, ...]) -> str | None:
    """The address a request came from. `X-Forwarded-For` counts only when the peer is a trusted
    proxy; then the right-most address that is not itself a trusted proxy is the client (an
    address the client wrote further left cannot be told from a forgery)."""
    if not trusted or peer is None or not forwarded_for:
        return peer
    address = _address(peer)
    if address is None or not any(address in net for net in trusted):
        return peer
    hops = [hop.strip() for value in forwarded_for for hop in value.split(",") if hop.strip()]
    for hop in reversed(hops):
        hop_address = _address(hop)
        if hop_address is None:
            return peer  # garbage in the chain: trust nothing beyond the proxy
        if not any(hop_address in net for net in trusted):
            return str(hop_address)
    return str(_address(hops[0])) if hops else peer  # every hop is a trusted proxy


def forwarded_scheme(peer: str | None, forwarded_proto: list[str], trusted: tuple[Network, ...]) -> str | None:
    """The scheme the client used, as a trusted proxy reports it in `X-Forwarded-Proto`
    ("https" or "http"), or None: when the peer is not a trusted proxy its word is ignored, as
    is anything but those two values. The right-most value is the nearest proxy's own."""
    if not trusted or peer is None or not forwarded_proto:
        return None
    address = _address(peer)
    if address is None or not any(address in net for net in trusted):
        return None
    values = [v.strip().lower() for value in forwarded_proto for v in value.split(",") if v.strip()]
    return values[-1] if values and values[-1] in ("http", "https") else None


def source_key(client: str | None) -> str:
    """What a source is counted as: its address, an IPv6 address by its /64."""
    if client is None:
        return "-"
    address = _address(client)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is None:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return client


@dataclass
class _Window:
    requests: int = 0
    failures: int = 0


class SourceGuard:
    def __init__(self, requests_per_minute: int, failures_per_minute: int, *, max_sources: int = 100_000,
                 clock: Callable[[], float] = time.monotonic):
        self.requests_per_minute = requests_per_minute  # 0: off
        self.failures_per_minute = failures_per_minute  # 0: off
        self.max_sources = max_sources
        self._clock = clock
        self._lock = threading.Lock()
        self._minute: int | None = None
        self._sources: dict[str, _Window] = {}
        self._warned = False

    def _window(self, client: str | None) -> tuple[_Window | None, float]:
        now = self._clock()
        if client is None or _address(client) is None:
            return None, now
        minute = int(now // 60)
        if minute != self._minute:
            self._minute, self._sources, self._warned = minute, {}, False
        key = source_key(client)
        window = self._sources.get(key)
        if window is None:
            if len(self._sources) >= self.max_sources:
                if not self._warned:
                    self._warned = True
                    log.warning("too many sources this minute; new ones are not limited",
                                extra={"fields": {"sources": len(self._sources)}})
                return None, now
            window = self._sources[key] = _Window()
        return window, now

    def admit(self, client: str | None, vouch: Callable[[], bool] | None = None) -> None:
        """Called before a key is checked: raises SourceLimited (429) or counts the request.

        Once the source has spent a budget, only a request that `vouch` vouches for (a valid
        API key: `service.tenancy.keyindex`, in memory) still passes; it has per-key limits of
        its own. So a budget throttles unauthenticated and failed attempts, never a valid key,
        however many strangers share the address (an office's NAT, a proxy's)."""
        if not (self.requests_per_minute or self.failures_per_minute):
            return
        with self._lock:
            window, now = self._window(client)
            if window is None:
                return
            retry = int(60 - now % 60) + 1
            refusal = None
            if self.failures_per_minute and window.failures >= self.failures_per_minute:
                refusal = SourceLimited("too many requests from this address failed to authenticate; retry later "
                                        "(requests with a valid API key are not held back)",
                                        retry_after=retry, code="too_many_auth_failures")
            elif self.requests_per_minute and window.requests >= self.requests_per_minute:
                refusal = SourceLimited(f"this address is limited to {self.requests_per_minute} requests per minute "
                                        "without a valid API key", retry_after=retry)
            else:
                window.requests += 1
                return
        if vouch is not None and vouch():  # outside the lock: one HMAC
            return
        raise refusal

    def failed(self, client: str | None) -> None:
        """A request from `client` failed to authenticate (401)."""
        if not self.failures_per_minute:
            return
        with self._lock:
            window, _ = self._window(client)
            if window is not None:
                window.failures += 1
