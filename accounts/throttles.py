"""Rate limits keyed by client address, stored in Django's cache (shared when it is Redis)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

DEFAULT_MINT_RATE = "20/min"


def client_address(request: Any) -> str:
    """The caller's address: ``REMOTE_ADDR``, or the proxy-reported one when proxies are declared.

    ``X-Forwarded-For`` is trusted only with ``REST_FRAMEWORK['NUM_PROXIES']`` set, and
    then only the entry the last trusted proxy added, so a client cannot pick its own
    rate-limit bucket by sending the header.
    """
    remote = request.META.get("REMOTE_ADDR", "") or "unknown"
    proxies = api_settings.NUM_PROXIES
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if proxies and forwarded:
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if hops:
            return hops[-min(proxies, len(hops))]
    return remote


class AnonymousSessionMintThrottle(SimpleRateThrottle):
    """How often one address may mint anonymous sessions (``ANONYMOUS_SESSION_MINT_RATE``)."""

    scope = "anonymous_session_mint"

    def get_rate(self) -> str:
        return getattr(settings, "ANONYMOUS_SESSION_MINT_RATE", DEFAULT_MINT_RATE)

    def get_cache_key(self, request: Any, view: Any) -> str:
        return self.cache_format % {"scope": self.scope, "ident": client_address(request)}
