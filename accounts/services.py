"""Writes of the accounts app."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import AnonymousSession


def anonymous_session_create(*, metadata: dict[str, Any] | None = None) -> AnonymousSession:
    """A new anonymous session with a fresh 256-bit token and the default expiry."""
    return AnonymousSession.objects.create(metadata=metadata or {})


def anonymous_sessions_expire(*, sessions: QuerySet[AnonymousSession]) -> int:
    """End these sessions now: their tokens answer 401 from the next request on."""
    return sessions.filter(expires_at__gt=timezone.now()).update(expires_at=timezone.now())
