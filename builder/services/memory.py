"""Editing shared memory from the builder (what an agent remembers, corrected by a person)."""

from __future__ import annotations

import json
from typing import Any

from django.db.models import Q, QuerySet

from builder.models import Agent, AgentSystem
from builder.schema import ConfigError
from runtime import jsonsafe
from runtime.memory.services import MAX_VALUE_CHARS, MemoryInputError, MemoryOwner, memory_remember
from runtime.models import MemoryEntry

# What a person may add by hand: a fact every conversation shares, or one only for themselves.
MANUAL_SCOPES = (("system", "Everyone (shared)"), ("user", "Only me"))


def memory_for_agent(*, agent: Agent) -> QuerySet[MemoryEntry]:
    return MemoryEntry.objects.filter(agent_key=agent.slug)


def memory_for_system(*, system: AgentSystem) -> QuerySet[MemoryEntry]:
    members = list(system.members.values_list("agent__slug", flat=True))
    return MemoryEntry.objects.filter(Q(system_key=system.slug) | Q(agent_key__in=members))


def memory_search(
    queryset: QuerySet[MemoryEntry], *, search: str = "", scope: str = ""
) -> QuerySet[MemoryEntry]:
    if scope:
        queryset = queryset.filter(scope=scope)
    if search:
        # value is JSON; searching its text form finds strings inside it too
        queryset = queryset.filter(Q(key__icontains=search) | Q(value__icontains=search))
    return queryset.select_related("user", "conversation").order_by("scope", "key")


def parse_value(text: str) -> Any:
    """JSON when it parses, else the text itself (people type plain sentences)."""
    stripped = text.strip()
    if not stripped:
        raise ConfigError({"value": "Enter a value, or delete the entry instead."})
    try:
        return jsonsafe.loads(stripped)
    except json.JSONDecodeError:
        return stripped
    except jsonsafe.UnsafeJSON as exc:
        raise ConfigError({"value": str(exc)}) from None


def memory_update(*, entry: MemoryEntry, value_text: str) -> MemoryEntry:
    value = parse_value(value_text)
    if len(json.dumps(value)) > MAX_VALUE_CHARS:
        raise ConfigError({"value": f"Keep the value to {MAX_VALUE_CHARS} characters or fewer."})
    entry.value = value
    entry.save(update_fields=["value", "updated_at"])
    return entry


def memory_delete(*, entry: MemoryEntry) -> None:
    entry.delete()


def memory_add(
    *, user: Any, key: str, value_text: str, scope: str, agent_key: str = "", system_key: str
) -> MemoryEntry:
    """Remember a fact by hand, in the shared scope of ``system_key`` or the user's own scope.
    An existing entry with the same key in that scope is replaced (one entry per key per scope)."""
    errors: dict[str, str] = {}
    if scope not in dict(MANUAL_SCOPES):
        errors["scope"] = "Choose who the entry is for."
    try:
        value = parse_value(value_text)
    except ConfigError as exc:
        errors.update(exc.errors)
        value = None
    if not key.strip():
        errors["key"] = "Enter a key, such as preferred_language."
    if errors:
        raise ConfigError(errors)
    owner = (
        MemoryOwner(scope=scope, system_key=system_key)
        if scope == "system"
        else MemoryOwner(scope="user", user_id=user.pk)
    )
    try:
        return memory_remember(owner=owner, key=key, value=value, agent_key=agent_key)
    except MemoryInputError as exc:
        raise ConfigError({exc.field: exc.message}) from None
