"""Tables of the API-key channel: keys, per-agent budgets, daily spend and spend reservations.

They belong to the ``runtime`` app (``runtime/models.py`` imports them), so their migrations
live in ``runtime/migrations``.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q

KEY_PREFIX = "sk_live_"  # noqa: S105 - the visible marker of a key, not a secret
LOOKUP_LENGTH = 12  # characters after the marker that find the row; the rest is the secret


class ApiKey(models.Model):
    """A secret that lets a program run the published agents it names.

    Only a SHA-256 hash of the secret is kept; the full key is shown once, when it is created.
    ``lookup`` (the characters after ``sk_live_``) finds the row and is safe to show.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100)
    lookup = models.CharField(max_length=LOOKUP_LENGTH, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    agent_keys = ArrayField(models.CharField(max_length=200), help_text="The agents this key may run.")
    requests_per_minute = models.PositiveIntegerField(default=60)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Written at most once a minute per key (api_keys.key_touch), not on every request.
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"
        indexes = [models.Index(fields=["created_at"], name="apikey_created_idx")]

    def __str__(self) -> str:
        return f"{self.name} ({self.display_prefix}…)"

    @property
    def display_prefix(self) -> str:
        return f"{KEY_PREFIX}{self.lookup}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @property
    def caller(self) -> str:
        """What the key's runs record as their caller (idempotency keys are unique per caller)."""
        return f"apikey:{self.pk}"


class AgentBudget(models.Model):
    """The most an agent may spend per UTC day on runs started through public channels: in
    dollars, in tokens, or both (each that is set holds). Tokens count every model's tokens,
    priced or not, so a budget in tokens also holds for a model whose price nobody knows."""

    agent_key = models.CharField(max_length=200, unique=True)
    daily_budget_usd = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True, help_text="Blank: no daily budget."
    )
    daily_budget_tokens = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Blank: no daily budget in tokens."
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"budget of {self.agent_key}"


class AgentDailySpend(models.Model):
    """One agent's channel spend on one UTC day: settled cost and tokens plus what in-flight
    runs reserved.

    A run may start only if ``spent_usd + reserved_usd + its reservation`` stays within the
    money budget and ``spent_tokens + reserved_tokens + its reservation`` within the token
    budget; the check and the reservation are one conditional UPDATE (``budget.budget_reserve``).
    """

    agent_key = models.CharField(max_length=200)
    day = models.DateField()
    spent_usd = models.DecimalField(max_digits=14, decimal_places=6, default=Decimal("0"))
    reserved_usd = models.DecimalField(max_digits=14, decimal_places=6, default=Decimal("0"))
    spent_tokens = models.PositiveBigIntegerField(default=0)
    reserved_tokens = models.PositiveBigIntegerField(default=0)
    # of spent_tokens, those on models without a known price: spent_usd leaves them out
    unpriced_tokens = models.PositiveBigIntegerField(default=0)
    settled_runs = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["agent_key", "day"], name="daily_spend_unique")]

    def __str__(self) -> str:
        return f"{self.agent_key} on {self.day}"

    @property
    def spent_label(self) -> str:
        """ "$0.0150", "$0.0150 + price unknown for 2,000 tokens" or "price unknown for 2,000 tokens"."""
        if not self.unpriced_tokens:
            return f"${self.spent_usd:.4f}"
        unknown = f"price unknown for {self.unpriced_tokens:,} tokens"
        return f"${self.spent_usd:.4f} + {unknown}" if self.spent_usd else unknown


class SpendReservation(models.Model):
    """What a channel run reserved of its day's budget, until its real cost is settled."""

    run = models.OneToOneField(
        "runtime.AgentRun", null=True, on_delete=models.SET_NULL, related_name="spend_reservation"
    )
    agent_key = models.CharField(max_length=200)
    day = models.DateField()
    amount_usd = models.DecimalField(max_digits=12, decimal_places=6)
    amount_tokens = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["agent_key"], condition=Q(settled_at__isnull=True), name="reservation_open_idx"
            )
        ]

    def __str__(self) -> str:
        return f"reservation of {self.amount_usd} for {self.agent_key}"
