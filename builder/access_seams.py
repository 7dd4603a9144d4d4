"""The answers ``builder/access.py`` gives the apps that may not import the builder: the runtime
(``runtime.access``: who may run, test and edit a stored agent or system) and the knowledge app
(``rag.access``: who may see and change a knowledge base). Registered in ``BuilderConfig.ready``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from builder.access import EDITOR, FULL, NONE, Perms, rank_of_row, visible_to
from builder.models import Agent, AgentSystem, AuditAction
from builder.services.sharing import audit_record
from runtime.access import StoredAgent

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser
    from django.db.models import QuerySet


class BuilderAgentAccess:
    """The runtime's view of stored agents and systems (``runtime.access``), from the rules above:
    viewers may run drafts (the playground), editors may also choose the model and message roles."""

    def stored_agent(self, agent_key: str) -> StoredAgent | None:
        system = AgentSystem.objects.filter(slug=agent_key).values("owner_id", "published_at").first()
        if system is not None:
            return StoredAgent(
                published=system["published_at"] is not None, memory_namespace=f"owner:{system['owner_id']}"
            )
        agent = Agent.objects.filter(slug=agent_key).values("owner_id", "published_version_id").first()
        if agent is None:
            return None
        return StoredAgent(
            published=agent["published_version_id"] is not None, memory_namespace=f"owner:{agent['owner_id']}"
        )

    def _perms(self, user: AbstractBaseUser, agent_key: str) -> Perms:
        # every API run and playground turn asks: the creator in one indexed lookup, shares after
        if not getattr(user, "is_staff", False) or not getattr(user, "is_active", True):
            return NONE
        model: type = AgentSystem
        row = AgentSystem.objects.filter(slug=agent_key).values("pk", "owner_id").first()
        if row is None:
            model, row = Agent, Agent.objects.filter(slug=agent_key).values("pk", "owner_id").first()
        if row is None:
            return NONE
        if user.is_superuser:
            return FULL
        return Perms.of_rank(rank_of_row(model, user, row["pk"], row["owner_id"]))

    def can_edit(self, user: AbstractBaseUser, agent_key: str) -> bool:
        return self._perms(user, agent_key).edit

    def can_test(self, user: AbstractBaseUser, agent_key: str) -> bool:
        return self._perms(user, agent_key).test

    def can_own(self, user: AbstractBaseUser, agent_key: str) -> bool:
        """Owners publish, and manage the agent's channels (widget, API keys)."""
        return self._perms(user, agent_key).publish

    def editable_keys(self, user: AbstractBaseUser) -> list[QuerySet]:
        return [
            visible_to(user, Agent.objects.all(), min_role=EDITOR).values("slug"),
            visible_to(user, AgentSystem.objects.all(), min_role=EDITOR).values("slug"),
        ]


class BuilderKnowledgeAccess:
    """rag's view of who may see and change knowledge bases (``rag.access``), from the rules above."""

    def visible(
        self, user: AbstractBaseUser, queryset: QuerySet, *, owner_field: str, min_role: str
    ) -> QuerySet:
        return visible_to(user, queryset, owner_field=owner_field, min_role=min_role)

    def deleted(self, user: AbstractBaseUser, base: Any) -> None:
        audit_record(actor=user, action=AuditAction.DELETED, obj=base)
