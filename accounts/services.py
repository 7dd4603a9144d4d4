"""Writes of the accounts app."""

from __future__ import annotations

from typing import Any

from accounts.models import AnonymousSession


def anonymous_session_create(*, metadata: dict[str, Any] | None = None) -> AnonymousSession:
    """A new anonymous session with a fresh 256-bit token and the default expiry."""
    return AnonymousSession.objects.create(metadata=metadata or {})
