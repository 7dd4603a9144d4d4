"""Where an outbound request may go: URL parsing, address vetting, the operator's allow-list.

Used by :mod:`runtime.net` (which re-exports these names); kept apart so the
rules can be read, and tested, without any I/O but DNS.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

from runtime import conf

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_SIX_TO_FOUR = ipaddress.ip_network("2002::/16")
_TEREDO = ipaddress.ip_network("2001::/32")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
# IANA's special-purpose ranges that are not globally reachable, written out rather than left
# to ``ipaddress``'s is_private/is_global: those tables changed in Python 3.12.4 and 3.13
# (3.12.1 calls 192.0.0.8 global, 3.13 calls 2001:1::1 and 2001:20::/28 global, none knows
# 3fff::/20), and what a tool may contact must not depend on the Python that runs it.
# 2001::/23 is refused whole, its few anycast services included: no tool needs them.
_SPECIAL = [
    (ipaddress.ip_network(network), reason)
    for network, reason in [
        ("0.0.0.0/8", "a 'this network' address"),
        ("192.0.0.0/24", "an IETF protocol assignment"),
        ("192.0.2.0/24", "a documentation address"),
        ("198.51.100.0/24", "a documentation address"),
        ("203.0.113.0/24", "a documentation address"),
        ("198.18.0.0/15", "a benchmarking address"),
        ("192.88.99.0/24", "a deprecated 6to4 relay anycast address"),
        ("255.255.255.255/32", "the broadcast address"),
        ("240.0.0.0/4", "a reserved address"),
        ("100::/64", "a discard-only address"),
        ("2001::/23", "an IETF protocol assignment"),
        ("2001:db8::/32", "a documentation address"),
        ("3fff::/20", "a documentation address"),
        ("5f00::/16", "a segment routing (SRv6) address"),
    ]
]
_BAD_URL_CHARS = re.compile(r"[\x00-\x20\x7f\\]")
_DEC = re.compile(r"^[0-9]+$")
_OCT = re.compile(r"^0[0-7]*$")
_HEX = re.compile(r"^0[xX][0-9a-fA-F]*$")


class NetError(Exception):
    """An outbound request failed; ``retryable`` says whether trying again can help."""

    retryable = False


class BlockedDestination(NetError):
    """The URL or the address it leads to is not allowed."""


class RedirectNotFollowed(NetError):
    """The server redirected a request that carries a secret; it was not followed."""

    def __init__(self, message: str, *, status: int, location: str) -> None:
        super().__init__(message)
        self.status = status
        self.location = location


class UpstreamError(NetError):
    """Could not resolve, connect or read in time; trying again may help."""

    retryable = True


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # lower-case, IDNA-encoded ASCII, no brackets
    port: int
    path: str  # path plus "?query", never empty
    literal: IPAddress | None

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.netloc}{self.path}"


# --- parsing ---------------------------------------------------------------------------------------


def _ipv4_part(part: str) -> int | None:
    if _HEX.match(part):
        return int(part[2:] or "0", 16)
    if len(part) > 1 and part[0] == "0":
        return int(part, 8) if _OCT.match(part) else None  # "08" is no number at all
    if _DEC.match(part):
        return int(part, 10)
    return None


def parse_ipv4_host(host: str) -> ipaddress.IPv4Address | None:
    """Decode every numeric IPv4 form (WHATWG URL rules, same as libc's inet_aton).

    Returns None for a host name; raises BlockedDestination for a host that
    ends in a number but is not a valid address (never hand that to DNS).
    """
    parts = host.split(".")
    if parts and parts[-1] == "" and len(parts) > 1:
        parts = parts[:-1]
    if not parts or _ipv4_part(parts[-1]) is None:
        return None
    numbers = [_ipv4_part(p) for p in parts]
    if len(parts) > 4 or any(n is None for n in numbers):
        raise BlockedDestination(f"The host {host!r} looks like an IP address but is not a valid one.")
    values = [n for n in numbers if n is not None]
    if any(n > 255 for n in values[:-1]) or values[-1] >= 256 ** (5 - len(values)):
        raise BlockedDestination(f"The host {host!r} looks like an IP address but is out of range.")
    number = values[-1]
    for index, value in enumerate(values[:-1]):
        number += value << (8 * (3 - index))
    return ipaddress.IPv4Address(number)


def parse_url(url: str) -> Target:
    """Check the shape of a URL and decode its host; raises BlockedDestination."""
    if not isinstance(url, str) or not url:
        raise BlockedDestination("The URL is empty.")
    if _BAD_URL_CHARS.search(url):
        raise BlockedDestination("The URL contains spaces, control characters or backslashes.")
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. an unclosed "[" or an IPv4 address in brackets
        raise BlockedDestination(f"The URL is malformed: {exc}.") from None
    scheme = parts.scheme.lower()
    if scheme not in {"http", "https"}:
        raise BlockedDestination(
            f"Only http and https URLs are allowed, not {scheme or 'a URL without scheme'!r}."
        )
    if parts.username is not None or parts.password is not None:
        raise BlockedDestination("Credentials in the URL are not allowed; put them in a secret header.")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise BlockedDestination("The URL's port is not a number between 0 and 65535.") from None
    raw_host = parts.hostname or ""
    if not raw_host:
        raise BlockedDestination("The URL has no host.")
    literal: IPAddress | None
    if "[" in parts.netloc:
        if not re.fullmatch(r"\[[^\[\]]+\](:[0-9]*)?", parts.netloc):
            raise BlockedDestination("The URL's host in brackets is followed by something other than a port.")
        if "%" in raw_host:
            raise BlockedDestination("IPv6 zone identifiers are not allowed in URLs.")
        try:
            literal = ipaddress.IPv6Address(raw_host)
        except ValueError:
            raise BlockedDestination(f"The host [{raw_host}] is not a valid IPv6 address.") from None
        host = str(literal)
    else:
        literal = parse_ipv4_host(raw_host)
        if literal is not None:
            host = str(literal)
        else:
            try:
                host = raw_host.rstrip(".").encode("idna").decode("ascii").lower()
            except UnicodeError:
                raise BlockedDestination(f"The host {raw_host!r} is not a valid host name.") from None
            if not host or not re.fullmatch(r"[a-z0-9._-]+", host):
                raise BlockedDestination(f"The host {raw_host!r} is not a valid host name.")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return Target(scheme=scheme, host=host, port=port, path=path, literal=literal)


# --- vetting addresses ------------------------------------------------------------------------------


def blocked_reason(ip: IPAddress) -> str | None:
    """Why an address may not be contacted, or None if it is globally routable."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            inner = blocked_reason(ip.ipv4_mapped)
            return f"IPv4-mapped form of {ip.ipv4_mapped}: {inner}" if inner else None
        if ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
            inner = blocked_reason(embedded)
            return f"NAT64 form of {embedded}: {inner}" if inner else None
        if ip in _NAT64_LOCAL:
            return "a local-use NAT64 address"
        if ip in _SIX_TO_FOUR:
            embedded = ip.sixtofour
            inner = blocked_reason(embedded) if embedded is not None else "malformed"
            return f"6to4 form of {embedded}: {inner}" if inner else None
        if ip in _TEREDO:
            return "a Teredo tunnel address"
        if ip in _IPV4_COMPATIBLE and not (ip.is_loopback or ip.is_unspecified):
            return "an IPv4-compatible address (deprecated)"
        if ip.is_site_local:
            return "a site-local address"
    if ip.is_unspecified:
        return "an unspecified address (0.0.0.0 or ::)"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address (cloud metadata lives here)"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT:
        return "a carrier-grade NAT (shared) address"
    if ip.is_multicast:
        return "a multicast address"
    for network, reason in _SPECIAL:
        if ip.version == network.version and ip in network:
            return f"{reason} ({network})"
    if ip.is_private:
        return "a private address"
    if ip.is_reserved or not ip.is_global:
        return "a reserved address"
    return None


@dataclass(frozen=True)
class AllowEntry:
    name: str | None
    network: IPNetwork | None
    port: int | None

    def matches(self, host: str, port: int, ip: IPAddress) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.network is not None:
            candidates = [ip]
            if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
                candidates.append(ip.ipv4_mapped)
            return any(c.version == self.network.version and c in self.network for c in candidates)
        assert self.name is not None
        if self.name.startswith("*."):
            return host.endswith(self.name[1:])
        return host == self.name


def parse_allow_entry(entry: str) -> AllowEntry:
    """``name``, ``name:port``, ``*.suffix``, ``10.0.0.0/8``, ``127.0.0.1:8080``, ``[::1]:8080``."""
    raw = entry.strip().lower()
    port: int | None = None
    host = raw
    if raw.startswith("["):
        inside, _, rest = raw[1:].partition("]")
        host = inside
        if rest:
            if not rest.startswith(":") or not rest[1:].isdigit():
                raise ImproperlyConfigured(f"AGENT_HTTP_ALLOWED_HOSTS entry {entry!r}: write [ipv6]:port.")
            port = int(rest[1:])
    elif raw.count(":") == 1:
        host, _, port_text = raw.partition(":")
        if not port_text.isdigit():
            raise ImproperlyConfigured(
                f"AGENT_HTTP_ALLOWED_HOSTS entry {entry!r}: the port must be a number."
            )
        port = int(port_text)
    if port is not None and not 0 < port < 65536:
        raise ImproperlyConfigured(f"AGENT_HTTP_ALLOWED_HOSTS entry {entry!r}: the port is out of range.")
    try:
        return AllowEntry(name=None, network=ipaddress.ip_network(host, strict=False), port=port)
    except ValueError:
        pass
    if not re.fullmatch(r"(\*\.)?[a-z0-9._-]+", host):
        raise ImproperlyConfigured(
            f"AGENT_HTTP_ALLOWED_HOSTS entry {entry!r} is neither a host name, a host:port, nor a CIDR."
        )
    return AllowEntry(name=host.rstrip("."), network=None, port=port)


def allowed_entries() -> list[AllowEntry]:
    return [parse_allow_entry(e) for e in conf.setting("AGENT_HTTP_ALLOWED_HOSTS")]


def vet_address(target: Target, ip: IPAddress, entries: Iterable[AllowEntry] | None = None) -> None:
    reason = blocked_reason(ip)
    if reason is None:
        return
    entries = allowed_entries() if entries is None else entries
    if any(entry.matches(target.host, target.port, ip) for entry in entries):
        return
    entry = f"[{target.host}]:{target.port}" if ":" in target.host else f"{target.host}:{target.port}"
    raise BlockedDestination(
        f"Refused to contact {target.host} ({ip}): it is {reason}. An operator can open it by "
        f"adding {entry} to AGENT_HTTP_ALLOWED_HOSTS in the server's environment and restarting."
    )


_LOOPBACK = ipaddress.IPv4Address("127.0.0.1")


def known_address(target: Target) -> IPAddress | None:
    """The address a host means without asking DNS: its literal, or loopback for ``localhost``
    and ``*.localhost`` (RFC 6761), so a URL is judged the same when saved and when called."""
    if target.literal is not None:
        return target.literal
    if target.host == "localhost" or target.host.endswith(".localhost"):
        return _LOOPBACK
    return None


async def resolve(target: Target) -> list[IPAddress]:
    """Every address the host resolves to, each vetted; refuses if any is not allowed."""
    entries = allowed_entries()
    known = known_address(target)
    if known is not None:
        addresses: list[IPAddress] = [known]
    else:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise UpstreamError(f"Could not resolve the host {target.host}: {exc.strerror}.") from None
        addresses = []
        for info in infos:
            ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
            if ip not in addresses:
                addresses.append(ip)
        if not addresses:
            raise UpstreamError(f"The host {target.host} has no address.")
    for ip in addresses:
        vet_address(target, ip, entries)
    return addresses
