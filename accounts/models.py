from __future__ import annotations

import secrets
import uuid
from datetime import timedelta

from django.db import models
from django.utils import timezone

ANONYMOUS_SESSION_TTL = timedelta(days=7)


def new_token() -> str:
    # 32 bytes = 256 bits of entropy, URL-safe
    return secrets.token_urlsafe(32)


def default_expiry():
    return timezone.now() + ANONYMOUS_SESSION_TTL


class AnonymousSession(models.Model):
    """A visitor without an account (the embedded widget) identified by a bearer token."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    token = models.CharField(max_length=64, unique=True, default=new_token)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(default=default_expiry)
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"anonymous session {self.id}"

    @property
    def is_expired(self) -> bool:
        return timezone.now() > self.expires_at
