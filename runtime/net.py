"""The one SSRF-safe outbound HTTP client.

Every outbound request a tool makes (and anything else that fetches a URL a
user or a model chose) goes through :func:`safe_request`. The steps:

1. Parse the URL ourselves: only ``http``/``https``, no credentials in the URL,
   no control characters; numeric hosts in every form browsers and libc accept
   (``2130706433``, ``0177.0.0.1``, ``127.1``, ``0x7f.1``, ``[::ffff:127.0.0.1]``)
   are decoded to the address they really mean.
2. Resolve the host ourselves and vet *every* address: only globally routable
   ones pass, after unmapping IPv4-mapped IPv6 and decoding the IPv4 address
   hidden in NAT64 and 6to4 forms; Teredo and local-use NAT64 are refused.
   ``AGENT_HTTP_ALLOWED_HOSTS`` lets an operator open named hosts or CIDRs.
3. Connect to the vetted address itself (the URL handed to httpx carries the
   IP; the original name travels in the Host header and as TLS SNI, so the
   certificate is still checked against the name). A second DNS lookup never
   happens, so DNS rebinding has nothing to race.
4. Check the peer address of the socket actually connected.
5. Follow redirects by hand (at most 5), re-running steps 1-4 for each hop;
   a request that carries a secret follows no redirect at all.
6. Read at most ``max_response_bytes`` of the (decoded) body, within one total
   deadline.
"""

from __future__ import annotations

import asyncio
import contextvars
import ipaddress
import logging
import re
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit

import httpx
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

logger = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_REDIRECTS = 5
_REDIRECT_CODES = {301, 302, 303, 307, 308}
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_SIX_TO_FOUR = ipaddress.ip_network("2002::/16")
_TEREDO = ipaddress.ip_network("2001::/32")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_BAD_URL_CHARS = re.compile(r"[\x00-\x20\x7f\\]")
_DEC = re.compile(r"^[0-9]+$")
_OCT = re.compile(r"^0[0-7]*$")
_HEX = re.compile(r"^0[xX][0-9a-fA-F]*$")
# Headers that carry credentials are dropped when a redirect leaves the origin.
_CREDENTIAL_HEADERS = {"authorization", "cookie", "proxy-authorization"}


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


@dataclass
class SafeResponse:
    status: int
    headers: httpx.Headers
    content: bytes
    truncated: bool
    url: str
    peer: str
    encoding: str | None = None
    redirects: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return self.content.decode(self.encoding or "utf-8", errors="replace")


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
    parts = urlsplit(url)
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
        if ip in _IPV4_COMPATIBLE:
            return "an unspecified, loopback or IPv4-compatible address"
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
    return [parse_allow_entry(e) for e in getattr(settings, "AGENT_HTTP_ALLOWED_HOSTS", []) or []]


def vet_address(target: Target, ip: IPAddress, entries: Iterable[AllowEntry] | None = None) -> None:
    reason = blocked_reason(ip)
    if reason is None:
        return
    entries = allowed_entries() if entries is None else entries
    if any(entry.matches(target.host, target.port, ip) for entry in entries):
        return
    raise BlockedDestination(
        f"Refused to contact {target.host} ({ip}): it is {reason}. "
        "An operator can open it with AGENT_HTTP_ALLOWED_HOSTS."
    )


async def resolve(target: Target) -> list[IPAddress]:
    """Every address the host resolves to, each vetted; refuses if any is not allowed."""
    entries = allowed_entries()
    if target.literal is not None:
        addresses: list[IPAddress] = [target.literal]
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


# --- secrets never reach logs -----------------------------------------------------------------------

_redactions: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("net_redactions", default=())


def redaction_forms(secrets: Iterable[str]) -> tuple[str, ...]:
    """The strings to hide for each secret: as is, URL-encoded, and its long words."""
    forms: set[str] = set()
    for secret in secrets:
        if not secret or len(secret) < 4:
            continue
        forms.update({secret, quote(secret, safe=""), quote_plus(secret)})
        forms.update(word for word in secret.split() if len(word) >= 8)
    return tuple(sorted(forms, key=len, reverse=True))


def redact(text: str, forms: Iterable[str]) -> str:
    for form in forms:
        if form in text:
            text = text.replace(form, "[redacted]")
    return text


class _RedactingFilter(logging.Filter):
    """Rewrites records from httpx/httpcore while a secret-carrying request is running."""

    def filter(self, record: logging.LogRecord) -> bool:
        forms = _redactions.get()
        if forms:
            message = redact(record.getMessage(), forms)
            record.msg, record.args = message, None
        return True


_FILTER = _RedactingFilter()
for _name in ("httpx", "httpcore.connection", "httpcore.http11", "httpcore.http2", "httpcore.proxy"):
    logging.getLogger(_name).addFilter(_FILTER)


# --- the request ------------------------------------------------------------------------------------


def _ip_url(target: Target, ip: IPAddress) -> httpx.URL:
    host = f"[{ip}]" if ip.version == 6 else str(ip)
    return httpx.URL(f"{target.scheme}://{host}:{target.port}").copy_with(
        raw_path=target.path.encode("ascii")
    )


async def _send_once(
    client: httpx.AsyncClient,
    method: str,
    target: Target,
    headers: Mapping[str, str],
    content: bytes | None,
    max_bytes: int,
) -> SafeResponse:
    addresses = await resolve(target)
    last_error: Exception | None = None
    for ip in addresses:
        request = client.build_request(
            method, _ip_url(target, ip), headers={**headers, "Host": target.netloc}, content=content
        )
        if target.scheme == "https" and target.literal is None:
            # Certificate and SNI are checked against the name, not the pinned IP.
            request.extensions["sni_hostname"] = target.host
        try:
            response = await client.send(request, stream=True)
        except httpx.ConnectError as exc:
            last_error = exc
            continue
        try:
            stream = response.extensions.get("network_stream")
            peer = stream.get_extra_info("server_addr") if stream is not None else None
            if not peer or ipaddress.ip_address(str(peer[0]).split("%", 1)[0]) != ip:
                raise BlockedDestination(
                    f"Refused {target.host}: the connected peer is not the vetted address."
                )
            body = bytearray()
            truncated = False
            async for chunk in response.aiter_bytes():
                body.extend(chunk)
                if len(body) > max_bytes:
                    del body[max_bytes:]
                    truncated = True
                    break
            return SafeResponse(
                status=response.status_code,
                headers=response.headers,
                content=bytes(body),
                truncated=truncated,
                url=target.url,
                peer=str(ip),
                encoding=response.charset_encoding,
            )
        finally:
            await response.aclose()
    raise UpstreamError(f"Could not connect to {target.host}: {type(last_error).__name__}.")


async def safe_request(
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    content: bytes | None = None,
    timeout: float = 10.0,
    max_response_bytes: int = 1_000_000,
    max_redirects: int = MAX_REDIRECTS,
    secrets: Iterable[str] = (),
) -> SafeResponse:
    """Send one request through the SSRF checks; see the module docstring for the steps.

    ``secrets`` are the secret values inside ``headers`` or ``url``: their
    presence disables redirects, and they are masked in httpx/httpcore logs and
    in the messages of errors raised here.
    """
    secret_values = [s for s in secrets if s]
    forms = redaction_forms(secret_values)
    token = _redactions.set(forms)
    try:
        async with asyncio.timeout(timeout):
            return await _follow(
                method.upper(),
                url,
                dict(headers or {}),
                content,
                timeout,
                max_response_bytes,
                0 if secret_values else max_redirects,
                bool(secret_values),
            )
    except TimeoutError:
        raise UpstreamError(f"No complete answer within {timeout:g} seconds.") from None
    except httpx.TimeoutException:
        raise UpstreamError(f"No complete answer within {timeout:g} seconds.") from None
    except httpx.HTTPError as exc:
        raise UpstreamError(redact(f"The request failed: {type(exc).__name__}: {exc}", forms)) from None
    except NetError as exc:
        if forms:
            exc.args = tuple(redact(str(a), forms) for a in exc.args)
        raise
    finally:
        _redactions.reset(token)


async def _follow(
    method: str,
    url: str,
    headers: dict[str, str],
    content: bytes | None,
    timeout: float,
    max_bytes: int,
    max_redirects: int,
    carries_secret: bool,
) -> SafeResponse:
    target = parse_url(url)
    hops: list[str] = []
    async with httpx.AsyncClient(trust_env=False, follow_redirects=False, timeout=timeout) as client:
        while True:
            response = await _send_once(client, method, target, headers, content, max_bytes)
            response.redirects = hops
            location = response.headers.get("location")
            if response.status not in _REDIRECT_CODES or not location:
                return response
            if carries_secret:
                raise RedirectNotFollowed(
                    f"The server answered {response.status} (redirect); redirects are not followed "
                    "for requests that carry a secret. Point the tool at the final URL.",
                    status=response.status,
                    location=location,
                )
            if len(hops) >= max_redirects:
                raise BlockedDestination(f"Too many redirects (more than {max_redirects}).")
            next_url = str(httpx.URL(target.url).join(location))
            next_target = parse_url(next_url)
            if (next_target.scheme, next_target.host, next_target.port) != (
                target.scheme,
                target.host,
                target.port,
            ):
                headers = {k: v for k, v in headers.items() if k.lower() not in _CREDENTIAL_HEADERS}
            if response.status == 303 or (response.status in {301, 302} and method == "POST"):
                method = "GET" if method != "HEAD" else method
                content = None
                headers = {
                    k: v for k, v in headers.items() if k.lower() not in {"content-type", "content-length"}
                }
            hops.append(next_target.url)
            target = next_target


def safe_request_sync(method: str, url: str, **kwargs: Any) -> SafeResponse:
    """:func:`safe_request` for synchronous code (not from inside a running event loop)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(safe_request(method, url, **kwargs))
    raise RuntimeError("safe_request_sync was called inside an event loop; await safe_request instead.")
