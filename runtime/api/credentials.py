"""API credentials that were good a moment ago, remembered for a few seconds per process.

Looking a token up costs a query on every request; a page that starts a run and
opens its event stream authenticates twice within milliseconds. A token that
authenticated within the last ``AGENT_API_AUTH_CACHE_SECONDS`` (default 5; 0 turns
this off) is taken as still good without asking the database again. So revoking a
token, deactivating its user or deleting an anonymous session takes effect within
that many seconds on every web process, not at once (an event stream already open
keeps streaming either way). An anonymous session is never remembered past its own
expiry. Only successes are remembered: a wrong token always reaches the database.
"""

from __future__ import annotations

import copy
import time
from datetime import datetime
from typing import Any

from django.apps import apps
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

from runtime import conf

DEFAULT_SECONDS = 5.0
LIMIT = 10_000  # entries per process; all are forgotten when it is reached


def cache_seconds() -> float:
    return conf.setting("AGENT_API_AUTH_CACHE_SECONDS")


class CredentialCache:
    """``credential -> (user, auth)`` until a deadline on the monotonic clock."""

    clock = staticmethod(time.monotonic)

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], tuple[float, Any, Any]] = {}

    def get(self, kind: str, credential: str) -> tuple[Any, Any] | None:
        entry = self._entries.get((kind, credential))
        if entry is None or entry[0] <= self.clock():
            return None
        # copies: a request may set attributes on its user; other threads hold the same entry
        return copy.copy(entry[1]), copy.copy(entry[2])

    def put(
        self, kind: str, credential: str, user: Any, auth: Any, *, expires_at: datetime | None = None
    ) -> None:
        seconds = cache_seconds()
        if expires_at is not None:
            seconds = min(seconds, (expires_at - timezone.now()).total_seconds())
        if seconds <= 0:
            return
        if len(self._entries) >= LIMIT:
            self._entries.clear()
        self._entries[(kind, credential)] = (self.clock() + seconds, user, auth)

    def clear(self) -> None:
        self._entries.clear()


credentials = CredentialCache()


class CachedTokenAuthentication(TokenAuthentication):
    """DRF's ``Authorization: Token <key>``, with the key remembered briefly (see the module).

    A project without ``rest_framework.authtoken`` has no tokens: such a header is a 401 that
    says so, not a server error from a model that is not installed.
    """

    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        if "\x00" in key:  # PostgreSQL cannot even compare text holding a NUL character
            raise exceptions.AuthenticationFailed("Invalid token.")
        if not apps.is_installed("rest_framework.authtoken"):
            raise exceptions.AuthenticationFailed(
                "API tokens are not enabled on this server (rest_framework.authtoken is not installed); "
                "sign in or use an anonymous session token."
            )
        remembered = credentials.get("token", key)
        if remembered is not None:
            return remembered
        user, token = super().authenticate_credentials(key)
        credentials.put("token", key, user, token)
        return user, token
