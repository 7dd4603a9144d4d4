"""Channel tables. Imported by ``runtime.models`` so they belong to the ``runtime`` app."""

from __future__ import annotations

import secrets
import uuid

from django.conf import settings
from django.db import models

PUBLISHABLE_KEY_PREFIX = "pk_"


def new_publishable_key() -> str:
    # Not a secret (it sits in every host page's HTML); random so it cannot be guessed or enumerated.
    return PUBLISHABLE_KEY_PREFIX + secrets.token_urlsafe(18)


def new_identity_secret() -> str:
    # A secret shared with the host site's server only: it signs identified visitors' JWTs.
    return secrets.token_urlsafe(32)


class WidgetPosition(models.TextChoices):
    BOTTOM_RIGHT = "bottom-right", "Bottom right"
    BOTTOM_LEFT = "bottom-left", "Bottom left"


class WidgetChannel(models.Model):
    """The web widget of one agent (or system) key: who may embed it and how it looks.

    Its visitors run the agent's published version only. Rules for the values live in
    ``runtime.channels.services`` (``widget_settings_clean``), which every writer calls.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    agent_key = models.CharField(max_length=200, unique=True)
    enabled = models.BooleanField(default=True)
    # Normalised origins (runtime.channels.origins), e.g. ["https://shop.example.com"].
    allowed_origins = models.JSONField(default=list, blank=True)
    publishable_key = models.CharField(max_length=64, unique=True, default=new_publishable_key)
    identity_secret = models.CharField(max_length=64, default=new_identity_secret)
    title = models.CharField(max_length=80, default="Chat with us")
    colour = models.CharField(max_length=7, default="#2563eb")
    position = models.CharField(
        max_length=20, choices=WidgetPosition.choices, default=WidgetPosition.BOTTOM_RIGHT
    )
    greeting = models.TextField(blank=True)
    suggested_questions = models.JSONField(default=list, blank=True)
    show_sources = models.BooleanField(default=True)
    messages_per_visitor_per_day = models.PositiveIntegerField(default=50)
    requests_per_minute_per_visitor = models.PositiveIntegerField(default=10)
    # Caps on each run a visitor starts (blank: the agent's and the server's own caps).
    max_steps_per_run = models.PositiveIntegerField(null=True, blank=True)
    max_tokens_per_run = models.PositiveIntegerField(null=True, blank=True)
    max_seconds_per_run = models.PositiveIntegerField(null=True, blank=True)
    # Files visitors may attach to a message (off by default: a public page's visitors are
    # strangers). The caps only tighten the server's AGENT_ATTACHMENT_MAX_FILES / _MAX_BYTES;
    # blank: the server's own.
    attachments_enabled = models.BooleanField(default=False)
    attachment_max_files = models.PositiveIntegerField(null=True, blank=True)
    attachment_max_mb = models.DecimalField(max_digits=7, decimal_places=2, null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["agent_key"]

    def __str__(self) -> str:
        return f"widget of {self.agent_key}"


class WidgetFeedback(models.Model):
    """A visitor's thumbs up or down on one answer (one per run; the latest click wins)."""

    run = models.OneToOneField("runtime.AgentRun", on_delete=models.CASCADE, related_name="widget_feedback")
    channel = models.ForeignKey(WidgetChannel, on_delete=models.CASCADE, related_name="feedback")
    anonymous_session_id = models.UUIDField(db_index=True)
    rating = models.SmallIntegerField(choices=[(1, "Helpful"), (-1, "Not helpful")])
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{'up' if self.rating > 0 else 'down'} on {self.run_id}"
