"""Where a callback may go (docs/design.md §3.4): the SSRF guard.

A callback URL is the user's, and the operator runs in the cluster: without a guard a task
could make the operator POST to the cloud metadata service, the API server or any pod. So a
URL is first checked as written (:func:`url_refusal`), and every address its host resolves
to is checked again where the connection is made (:func:`address_refusal`, called from
``adapters/webhooks.py``'s connection layer, so that DNS rebinding cannot slip past). Only
public unicast addresses pass unless the operator's :class:`DestinationPolicy` allows more.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import urllib.parse
from collections.abc import Sequence

NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")
NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")


@dataclasses.dataclass(frozen=True)
class DestinationPolicy:
    """Where callbacks may go besides public addresses: ``callbacks.allowedHosts`` / ``allowedCIDRs``."""

    allowed_hosts: frozenset[str] = frozenset()
    """Callbacks to these hosts (or ``*.domain``) skip the SSRF guard."""

    allowed_cidrs: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    """Callbacks to addresses in these networks (e.g. 10.20.0.0/16) skip the SSRF guard."""

    @classmethod
    def of(cls, hosts: Sequence[str] = (), cidrs: Sequence[str] = ()) -> DestinationPolicy:
        """Raises ValueError naming the entry that is not a CIDR."""
        networks = []
        for cidr in cidrs:
            try:
                networks.append(ipaddress.ip_network(cidr.strip(), strict=False))
            except ValueError:
                raise ValueError(f"callbacks allowedCIDRs: {cidr!r} is not an IP network (e.g. 10.0.0.0/8)") from None
        return cls(frozenset(h.strip().lower().rstrip(".") for h in hosts if h.strip()), tuple(networks))

    def host_allowed(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return any(
            host == allowed or (allowed.startswith("*.") and host.endswith(allowed[1:]))
            for allowed in self.allowed_hosts
        )


def url_refusal(url: str) -> str | None:
    """Why ``url`` is not a callback URL at all (before any address is looked at)."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"callback url {url!r} cannot be parsed: {exc}"
    if parts.scheme not in ("http", "https"):
        return f"callback url scheme {parts.scheme!r} is not allowed: use http or https"
    if not parts.hostname:
        return f"callback url {url!r} has no host"
    if parts.username is not None or parts.password is not None:
        return "callback url must not carry credentials: put them in headersSecretRef"
    if port == 0:
        return "callback url port 0 is not allowed"
    return None


def address_refusal(host: str, address: str, policy: DestinationPolicy) -> str | None:
    """Why a connection to ``address`` (what ``host`` resolved to) is refused; ``None``: allowed.

    Only globally routable unicast addresses are allowed by default: loopback, link-local
    (169.254.169.254, the cloud metadata service), private, shared (100.64/10), unspecified,
    multicast and reserved ones are refused, also when written as IPv4-mapped or NAT64 IPv6."""
    if policy.host_allowed(host):
        return None
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return f"callback host {host!r} resolved to {address!r}, which is not an IP address"
    if any(ip in network for network in policy.allowed_cidrs):
        return None
    effective = _embedded_ipv4(ip) or ip
    if effective.is_global and not effective.is_multicast:
        return None
    kind = _kind(effective)
    shown = host if host == address else f"{host} ({address})"
    return (
        f"callback to {shown} refused: {kind} addresses are not allowed (SSRF guard); "
        "an operator can allow it with callbacks.allowedHosts or allowedCIDRs"
    )


def _embedded_ipv4(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in NAT64_WELL_KNOWN:  # NAT64: the IPv4 address in the last 32 bits
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in NAT64_LOCAL:  # RFC 8215 local-use NAT64 prefix: never a public destination
        return ipaddress.IPv4Address("0.0.0.0")
    if ip.sixtofour is not None:
        return ip.sixtofour
    return None


def _kind(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip.is_private:
        return "private"
    return "non-public"
