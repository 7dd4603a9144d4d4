"""Which knowledge bases an agent uses."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction

from builder.models import Agent, AgentKnowledge
from rag.models import KnowledgeBase


@transaction.atomic
def agent_knowledge_set(*, agent: Agent, knowledge_bases: Iterable[KnowledgeBase]) -> list[KnowledgeBase]:
    """Attach exactly ``knowledge_bases`` to ``agent`` (the caller checked the user may use each)."""
    wanted = {base.pk: base for base in knowledge_bases}
    AgentKnowledge.objects.filter(agent=agent).exclude(knowledge_base_id__in=wanted).delete()
    present = set(AgentKnowledge.objects.filter(agent=agent).values_list("knowledge_base_id", flat=True))
    AgentKnowledge.objects.bulk_create(
        [AgentKnowledge(agent=agent, knowledge_base=base) for pk, base in wanted.items() if pk not in present]
    )
    return list(wanted.values())
