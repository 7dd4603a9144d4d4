"""Which knowledge bases an agent uses."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction

from builder.models import Agent, AgentKnowledge, AuditAction
from builder.schema import ConfigError
from builder.services.sharing import audit_record
from rag.models import KnowledgeBase
from rag.services import knowledge_base_delete

MODES = ("auto", "tool", "both")


@transaction.atomic
def agent_knowledge_set(
    *, agent: Agent, knowledge_bases: Iterable[KnowledgeBase], mode: str = "auto"
) -> list[KnowledgeBase]:
    """Attach exactly ``knowledge_bases`` to ``agent``, used in ``mode`` (auto, tool or both).

    The caller checked that the user may use each base."""
    if mode not in MODES:
        raise ConfigError({"mode": f"Unknown mode {mode!r}; use one of {', '.join(MODES)}."})
    wanted = {base.pk: base for base in knowledge_bases}
    AgentKnowledge.objects.filter(agent=agent).exclude(knowledge_base_id__in=wanted).delete()
    present = set(AgentKnowledge.objects.filter(agent=agent).values_list("knowledge_base_id", flat=True))
    AgentKnowledge.objects.filter(agent=agent).update(mode=mode)
    AgentKnowledge.objects.bulk_create(
        [
            AgentKnowledge(agent=agent, knowledge_base=base, mode=mode)
            for pk, base in wanted.items()
            if pk not in present
        ]
    )
    return list(wanted.values())


@transaction.atomic
def knowledge_base_remove(*, knowledge_base: KnowledgeBase, user: Any) -> None:
    """Delete a knowledge base (rag's service) and record who did it in the builder's audit log."""
    audit_record(actor=user, action=AuditAction.DELETED, obj=knowledge_base)
    knowledge_base_delete(knowledge_base=knowledge_base)
