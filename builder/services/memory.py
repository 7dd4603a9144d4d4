"""Editing shared memory from the builder (what an agent remembers, corrected by a person)."""

from __future__ import annotations

import json
from typing import Any

from django.db.models import Q, QuerySet

from builder.models import Agent, AgentSystem
from builder.schema import ConfigError
from runtime import jsonsafe
from runtime.models import MemoryEntry


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
    entry.value = parse_value(value_text)
    entry.save(update_fields=["value", "updated_at"])
    return entry


def memory_delete(*, entry: MemoryEntry) -> None:
    entry.delete()
