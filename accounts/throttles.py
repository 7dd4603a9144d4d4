"""Rate limits keyed by client address, stored in Django's cache (shared when it is Redis)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

DEFAULT_MINT_RATE = "20/min"


class AnonymousSessionMintThrottle(SimpleRateThrottle):
    """How often one address may mint anonymous sessions (``ANONYMOUS_SESSION_MINT_RATE``).

    The address is DRF's ``get_ident``: ``REMOTE_ADDR``, or with ``REST_FRAMEWORK['NUM_PROXIES']``
    set (``NUM_PROXIES`` in the environment, default 0) the ``X-Forwarded-For`` entry the last
    trusted proxy added, so a client cannot pick its own bucket by sending the header.
    """

    scope = "anonymous_session_mint"

    def get_rate(self) -> str:
        return getattr(settings, "ANONYMOUS_SESSION_MINT_RATE", DEFAULT_MINT_RATE)

    def get_cache_key(self, request: Any, view: Any) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
