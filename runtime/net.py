"""The one SSRF-safe outbound HTTP client.

Every outbound request a tool makes (and anything else that fetches a URL a
user or a model chose) goes through :func:`safe_request`. The steps:

1. Parse the URL ourselves: only ``http``/``https``, no credentials in the URL,
   no control characters; numeric hosts in every form browsers and libc accept
   (``2130706433``, ``0177.0.0.1``, ``127.1``, ``0x7f.1``, ``[::ffff:127.0.0.1]``)
   are decoded to the address they really mean.
2. Resolve the host ourselves and vet *every* address: only globally routable
   ones pass, after unmapping IPv4-mapped IPv6 and decoding the IPv4 address
   hidden in NAT64 and 6to4 forms; Teredo and local-use NAT64 are refused. IANA's
   special-purpose ranges are listed in :mod:`runtime.netaddr` rather than taken from
   ``ipaddress``'s is_private/is_global, whose tables differ between Python versions.
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
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, quote_plus

import httpx

from runtime.netaddr import (
    AllowEntry,
    BlockedDestination,
    IPAddress,
    NetError,
    RedirectNotFollowed,
    Target,
    UpstreamError,
    allowed_entries,
    blocked_reason,
    known_address,
    parse_allow_entry,
    parse_ipv4_host,
    parse_url,
    resolve,
    vet_address,
)

__all__ = [
    "AllowEntry",
    "BlockedDestination",
    "NetError",
    "RedirectNotFollowed",
    "SafeResponse",
    "Target",
    "UpstreamError",
    "allowed_entries",
    "blocked_reason",
    "known_address",
    "parse_allow_entry",
    "parse_ipv4_host",
    "parse_url",
    "redact",
    "redaction_forms",
    "resolve",
    "safe_request",
    "safe_request_sync",
    "vet_address",
]

logger = logging.getLogger(__name__)

MAX_REDIRECTS = 5
_REDIRECT_CODES = {301, 302, 303, 307, 308}
# Headers that carry credentials are dropped when a redirect leaves the origin.
_CREDENTIAL_HEADERS = {"authorization", "cookie", "proxy-authorization"}


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
    detail = str(last_error)[:300] or type(last_error).__name__
    raise UpstreamError(f"Could not connect to {target.host}: {detail}")


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
    verify: ssl.SSLContext | bool = True,
) -> SafeResponse:
    """Send one request through the SSRF checks; see the module docstring for the steps.

    ``secrets`` are the secret values inside ``headers`` or ``url``: their
    presence disables redirects, and they are masked in httpx/httpcore logs and
    in the messages of errors raised here.
    ``verify`` is an SSL context (a private CA) or True; certificates are always checked
    against the host name, never the pinned address.
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
                verify,
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
    verify: ssl.SSLContext | bool,
) -> SafeResponse:
    target = parse_url(url)
    hops: list[str] = []
    # trust_env=False: a proxy from the environment would make the pinned-address check meaningless.
    client = httpx.AsyncClient(trust_env=False, follow_redirects=False, timeout=timeout, verify=verify)
    async with client:
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
