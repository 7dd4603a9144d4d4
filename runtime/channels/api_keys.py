"""API keys: create, revoke, set limits, and find the key a request presents.

A key is ``sk_live_`` + 12 lookup characters + 43 secret characters. The lookup finds the
row; the whole key is hashed with SHA-256 (the secret is 256 random bits, so a slow hash
adds nothing) and compared in constant time. The key itself is returned once, by
``api_key_create``, and never stored.

Who may manage an agent's keys is asked of ``runtime.access.may_manage_channels`` (its
owner and superusers). Agents are named by ``agent_key``: stored and code agents alike.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
import time
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from runtime import access, registry
from runtime.channels.api_key_models import KEY_PREFIX, LOOKUP_LENGTH, AgentBudget, ApiKey

MAX_NAME = 100
MAX_RPM = 10_000
MAX_DAILY_BUDGET = Decimal("1000000")
MAX_DAILY_TOKENS = 10**12
_TOKEN_SUFFIXES = {"k": 1_000, "m": 1_000_000}
UNCHANGED: Any = object()  # agent_budget_set: leave this budget as it is
TOUCH_EVERY_SECONDS = 60.0
_LOOKUP_ALPHABET = string.ascii_letters + string.digits
_touched: dict[Any, float] = {}  # key id -> time.monotonic() of this process's last write


@dataclass
class ChannelInputError(ValueError):
    """Bad input for a key or a budget; ``field`` names what to fix."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class NotAllowed(PermissionError):
    """The user may not manage this agent's channels."""


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _check_owner(user: Any, agent_key: str) -> None:
    # A signed-in user is required: services called without one are server code, but keys are
    # always made by a person, who becomes created_by.
    if not getattr(user, "is_authenticated", False) or not access.may_manage_channels(
        agent_key=agent_key, user=user
    ):
        raise NotAllowed(f"You may not manage the API keys of {agent_key!r}.")


def _clean_name(name: Any) -> str:
    name = " ".join(str(name or "").split())
    if not name:
        raise ChannelInputError("name", "Give the key a name, e.g. the app that will use it.")
    if len(name) > MAX_NAME:
        raise ChannelInputError("name", f"Use at most {MAX_NAME} characters.")
    return name


def clean_requests_per_minute(value: Any) -> int:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        raise ChannelInputError(
            "requests_per_minute", f"Write a whole number from 1 to {MAX_RPM}, e.g. 60."
        ) from None
    if not 1 <= number <= MAX_RPM:
        raise ChannelInputError("requests_per_minute", f"Write a whole number from 1 to {MAX_RPM}, e.g. 60.")
    return number


def clean_daily_budget(value: Any) -> Decimal | None:
    text = str(value if value is not None else "").strip().lstrip("$").strip()
    if not text:
        return None
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise ChannelInputError(
            "daily_budget_usd",
            "Write an amount in dollars, e.g. 5 or 12.50, or leave it blank for no budget.",
        ) from None
    if not amount.is_finite() or amount < 0 or amount > MAX_DAILY_BUDGET:
        raise ChannelInputError(
            "daily_budget_usd",
            f"Write an amount from 0 to {MAX_DAILY_BUDGET:,}, or leave it blank for no budget.",
        )
    if amount != amount.quantize(Decimal("0.01")):
        raise ChannelInputError("daily_budget_usd", "Use at most two decimals (cents), e.g. 12.50.")
    return amount


def clean_daily_budget_tokens(value: Any) -> int | None:
    """A whole number of tokens: ``200000``, ``200,000``, ``200k`` or ``1.5M``; blank: no budget."""
    text = str(value if value is not None else "").strip().lower().replace(",", "").replace("_", "")
    text = "".join(text.split()).removesuffix("tokens")
    if not text:
        return None
    factor = _TOKEN_SUFFIXES.get(text[-1], 1)
    try:
        amount = Decimal(text[:-1] if factor > 1 else text) * factor
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite() or amount != amount.to_integral_value():
        raise ChannelInputError(
            "daily_budget_tokens",
            "Write a whole number of tokens, e.g. 200000 or 200k, or leave it blank for no budget in tokens.",
        )
    if not 0 <= amount <= MAX_DAILY_TOKENS:
        raise ChannelInputError(
            "daily_budget_tokens",
            f"Write a number of tokens from 0 to {MAX_DAILY_TOKENS:,}, or leave it blank for no budget in tokens.",
        )
    return int(amount)


@transaction.atomic
def api_key_create(
    *, name: str, agent_keys: list[str], user: Any, requests_per_minute: Any = 60
) -> tuple[ApiKey, str]:
    """Create a key for ``agent_keys``; returns the row and the key, which is never shown again."""
    cleaned_name = _clean_name(name)
    if not isinstance(agent_keys, list) or not agent_keys or not all(isinstance(k, str) for k in agent_keys):
        raise ChannelInputError("agent_keys", "Name at least one agent this key may run.")
    for agent_key in agent_keys:
        if not registry.agent_exists(agent_key):
            raise ChannelInputError("agent_keys", f"No agent is registered with the key {agent_key!r}.")
        _check_owner(user, agent_key)
    rpm = clean_requests_per_minute(requests_per_minute)
    lookup = "".join(secrets.choice(_LOOKUP_ALPHABET) for _ in range(LOOKUP_LENGTH))
    token = f"{KEY_PREFIX}{lookup}{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(
        name=cleaned_name,
        lookup=lookup,
        secret_hash=_hash(token),
        agent_keys=list(dict.fromkeys(agent_keys)),
        requests_per_minute=rpm,
        created_by=user,
    )
    return key, token


def api_key_revoke(*, key: ApiKey, user: Any) -> ApiKey:
    """Revoke at once in the database; a web process that just saw the key good takes it as good
    for at most ``AGENT_API_AUTH_CACHE_SECONDS`` more (runtime/api/credentials.py)."""
    for agent_key in key.agent_keys:
        _check_owner(user, agent_key)
    ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    key.refresh_from_db()
    return key


def api_key_set_limit(*, key: ApiKey, user: Any, requests_per_minute: Any) -> ApiKey:
    for agent_key in key.agent_keys:
        _check_owner(user, agent_key)
    key.requests_per_minute = clean_requests_per_minute(requests_per_minute)
    key.save(update_fields=["requests_per_minute"])
    return key


def agent_budget_set(
    *, agent_key: str, user: Any, daily_budget_usd: Any = UNCHANGED, daily_budget_tokens: Any = UNCHANGED
) -> AgentBudget:
    """Set the agent's daily budget in dollars and/or tokens (blank or None: none); both are
    checked before anything is saved. A budget not passed is left as it is."""
    _check_owner(user, agent_key)
    values: dict[str, Any] = {}
    if daily_budget_usd is not UNCHANGED:
        values["daily_budget_usd"] = clean_daily_budget(daily_budget_usd)
    if daily_budget_tokens is not UNCHANGED:
        values["daily_budget_tokens"] = clean_daily_budget_tokens(daily_budget_tokens)
    budget, _ = AgentBudget.objects.update_or_create(agent_key=agent_key, defaults=values)
    return budget


# -- reads -------------------------------------------------------------------------------------


def keys_for_agent(agent_key: str) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(agent_keys__contains=[agent_key]).select_related("created_by")


def key_for_agent(agent_key: str, key_id: Any) -> ApiKey | None:
    try:
        return keys_for_agent(agent_key).filter(pk=key_id).first()
    except (ValueError, TypeError):
        return None


def budgets_for(agent_key: str) -> AgentBudget:
    """The agent's budgets (an unsaved row with neither set when it has none)."""
    return AgentBudget.objects.filter(agent_key=agent_key).first() or AgentBudget(agent_key=agent_key)


def key_for_token(token: str) -> ApiKey | None:
    """The key (revoked or not) whose full text is ``token``, or None."""
    if not token.startswith(KEY_PREFIX) or "\x00" in token or len(token) > 200:
        return None
    lookup = token[len(KEY_PREFIX) : len(KEY_PREFIX) + LOOKUP_LENGTH]
    key = ApiKey.objects.filter(lookup=lookup).first()
    if key is None or not hmac.compare_digest(key.secret_hash, _hash(token)):
        return None
    return key


def key_touch(key: ApiKey) -> None:
    """Record that the key was used: at most one write per key per minute, across processes.

    Each process remembers when it last wrote; the UPDATE's condition stops two processes
    writing in the same minute.
    """
    now_mono = time.monotonic()
    last = _touched.get(key.pk)
    if last is not None and now_mono - last < TOUCH_EVERY_SECONDS:
        return
    if len(_touched) > 10_000:
        _touched.clear()
    _touched[key.pk] = now_mono
    now = timezone.now()
    ApiKey.objects.filter(pk=key.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - timedelta(seconds=TOUCH_EVERY_SECONDS))
    ).update(last_used_at=now)
