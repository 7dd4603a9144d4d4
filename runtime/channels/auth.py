"""``Authorization: Bearer sk_live_...`` for DRF, and the per-key requests-per-minute limit.

The authentication answers ``(AnonymousUser(), ApiKey)``: a key is nobody's login. Runs it
starts record ``caller = "apikey:<id>"`` and are never an editor's runs (only published
agents, the agent's own model, user messages). A key that just authenticated is remembered
for ``AGENT_API_AUTH_CACHE_SECONDS`` per process, like API tokens (runtime/api/credentials.py),
so a revocation reaches every process within that many seconds.

The limit is a sliding window over two fixed one-minute counters in Django's cache (Redis when
``REDIS_URL`` is set, so every process shares it): ``previous * (1 - elapsed) + current``.
Counting is one atomic ``INCR``, so concurrent requests cannot slip past it the way a
read-modify-write history can; a refused request is taken off the count again.
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.core.cache import cache
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.throttling import BaseThrottle

from runtime.api.credentials import credentials
from runtime.channels.api_key_models import KEY_PREFIX, ApiKey
from runtime.channels.api_keys import key_for_token, key_touch

WINDOW = 60


class ApiKeyAuthentication(BaseAuthentication):
    """``Authorization: Bearer sk_live_...``; ``request.auth`` is the :class:`ApiKey`."""

    def authenticate(self, request: Any) -> tuple[AnonymousUser, ApiKey] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != b"bearer":
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(
                "Send the API key as 'Authorization: Bearer sk_live_...', with no spaces in the key."
            )
        try:
            token = parts[1].decode()
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("The API key is not valid.") from None
        if not token.startswith(KEY_PREFIX):
            return None  # someone else's bearer token (a JWT): another authenticator may know it
        return self.authenticate_key(token)

    def authenticate_key(self, token: str) -> tuple[AnonymousUser, ApiKey]:
        remembered = credentials.get("apikey", token)
        if remembered is not None:
            key_touch(remembered[1])
            return remembered
        key = key_for_token(token)
        if key is None:
            raise exceptions.AuthenticationFailed(
                "The API key is not valid. Check that you copied all of it; the agent's owner can make a new one."
            )
        if not key.is_active:
            raise exceptions.AuthenticationFailed(
                "This API key was revoked. Ask the agent's owner for a new one."
            )
        credentials.put("apikey", token, AnonymousUser(), key)
        key_touch(key)
        return AnonymousUser(), key

    def authenticate_header(self, request: Any) -> str:
        return 'Bearer realm="api"'


class BudgetRefused(exceptions.APIException):
    """The agent's daily budget is used up (``budget.BudgetExceeded``) as a DRF error: 429 + Retry-After."""

    status_code = 429
    default_code = "daily_budget_exceeded"

    def __init__(self, exc: Any) -> None:
        super().__init__(str(exc))
        self.wait = exc.retry_after


def api_key_of(request: Any) -> ApiKey | None:
    auth = getattr(request, "auth", None)
    return auth if isinstance(auth, ApiKey) else None


class ApiKeyRateThrottle(BaseThrottle):
    """At most ``ApiKey.requests_per_minute`` requests per key over any minute (module docstring)."""

    clock = staticmethod(time.time)

    def __init__(self) -> None:
        self._wait: float | None = None

    def allow_request(self, request: Any, view: Any) -> bool:
        key = api_key_of(request)
        if key is None:
            return True
        limit = key.requests_per_minute
        now = self.clock()
        window, into = divmod(now, WINDOW)
        current = f"apikey-rate:{key.pk}:{int(window)}"
        previous_count = cache.get(f"apikey-rate:{key.pk}:{int(window) - 1}", 0)
        cache.add(current, 0, timeout=WINDOW * 2 + 5)
        try:
            count = cache.incr(current)
        except ValueError:  # expired between add and incr
            cache.set(current, 1, timeout=WINDOW * 2 + 5)
            count = 1
        weight = (WINDOW - into) / WINDOW
        if previous_count * weight + count <= limit:
            return True
        with contextlib.suppress(ValueError):
            cache.decr(current)  # a refused request does not count against the next ones
        self._wait = self._seconds_until_allowed(limit, previous_count, count - 1, into)
        return False

    @staticmethod
    def _seconds_until_allowed(limit: int, previous: int, current: int, into: float) -> float:
        if current + 1 <= limit and previous > 0:
            # within this window, once the previous minute's share has shrunk enough
            needed_weight = (limit - current - 1) / previous
            return max(1.0, (1 - needed_weight) * WINDOW - into)
        # next window: this window's count becomes the previous one
        rest = WINDOW - into
        if current <= 0 or limit - 1 >= current:
            return max(1.0, rest)
        return max(1.0, rest + (1 - (limit - 1) / current) * WINDOW)

    def wait(self) -> float | None:
        return math.ceil(self._wait) if self._wait is not None else None
