"""Allowed origins of a widget channel: parsing, normalising and matching.

An origin is ``scheme://host[:port]``: ``http`` or ``https``, no path, query, fragment or
user info. Default ports are dropped (``https://shop.example.com:443`` is
``https://shop.example.com``) and hosts are lower-cased, so comparison is exact string equality
with what a browser sends in ``Origin``.

One wildcard form exists, and only this one: ``https://*.example.com`` matches every subdomain
of ``example.com`` at any depth (``https://a.example.com``, ``https://a.b.example.com``) with the
same scheme and port, but not ``https://example.com`` itself (list it too if you want it).
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

MAX_ORIGINS = 20
DEFAULT_PORTS = {"http": 80, "https": 443}
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
HOST_RE = re.compile(rf"^(?:{_LABEL}\.)*{_LABEL}$|^\d{{1,3}}(?:\.\d{{1,3}}){{3}}$|^\[[0-9a-f:.]+\]$")


class OriginError(ValueError):
    """``value`` is not an origin; the message says how to write it."""


def normalise_origin(value: str) -> str:
    """``value`` as a browser would send it in ``Origin`` (or a ``*.`` pattern); raises OriginError."""
    text = value.strip()
    if not text:
        raise OriginError("Empty line: remove it.")
    if "\x00" in text or any(ch.isspace() for ch in text):
        raise OriginError(f"{text!r} contains spaces or control characters.")
    example = "write it like https://shop.example.com (scheme, host and optional port)"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise OriginError(f"{text!r} is not an origin; {example}.") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise OriginError(f"{text!r}: use http:// or https://; {example}.")
    if parts.username or parts.password or "@" in parts.netloc:
        raise OriginError(f"{text!r}: remove the user name; {example}.")
    if parts.path not in ("", "/") or parts.query or parts.fragment or text.endswith("?"):
        raise OriginError(
            f"{text!r} has a path; an origin is only the scheme, host and optional port, like "
            "https://shop.example.com."
        )
    host = (parts.hostname or "").lower()
    if ":" in host:  # an IPv6 literal: urlsplit drops its brackets
        try:
            host = f"[{ipaddress.IPv6Address(host)}]"
        except ValueError:
            raise OriginError(f"{text!r}: the IPv6 address is not valid.") from None
    wildcard = host.startswith("*.")
    bare = host[2:] if wildcard else host
    if "*" in bare or not bare or not HOST_RE.match(bare):
        raise OriginError(
            f"{text!r}: the host is not valid; the only wildcard allowed is a leading '*.' "
            "(https://*.example.com)."
        )
    if wildcard and "." not in bare:
        raise OriginError(f"{text!r}: a wildcard needs a domain with a dot, like https://*.example.com.")
    netloc = host if port is None or port == DEFAULT_PORTS[scheme] else f"{host}:{port}"
    return f"{scheme}://{netloc}"


def parse_origins(lines: list[str] | str) -> tuple[list[str], list[str]]:
    """Normalised, de-duplicated origins and the list of problems (one per bad line)."""
    if isinstance(lines, str):
        lines = lines.splitlines()
    origins: list[str] = []
    problems: list[str] = []
    for line in lines:
        if not isinstance(line, str):
            problems.append("Each origin must be text.")
            continue
        if not line.strip():
            continue
        try:
            origin = normalise_origin(line)
        except OriginError as exc:
            problems.append(str(exc))
            continue
        if origin not in origins:
            origins.append(origin)
    if len(origins) > MAX_ORIGINS:
        problems.append(f"{len(origins)} origins: at most {MAX_ORIGINS}.")
    return origins, problems


def origin_allowed(origin: str, allowed: list[str]) -> bool:
    """Does the browser's ``Origin`` header value match one of ``allowed`` (normalised entries)?"""
    try:
        wanted = normalise_origin(origin)
    except OriginError:
        return False
    if "*" in wanted:
        return False  # a browser never sends a pattern
    if wanted in allowed:
        return True
    scheme, _, netloc = wanted.partition("://")
    for entry in allowed:
        if "://*." not in entry:
            continue
        entry_scheme, _, pattern = entry.partition("://*.")
        if entry_scheme != scheme:
            continue
        suffix_host, _, suffix_port = pattern.partition(":")
        host, _, port = netloc.partition(":")
        if port == suffix_port and host.endswith("." + suffix_host):
            return True
    return False
