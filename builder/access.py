"""One access helper per resource: the object and what the user may do with it.

Objects belong to their owner; superusers see everything. Collaborators with
roles (issue: accounts) plug in here and nowhere else. An object the user may
not see is a 404, never a 403, so its existence does not leak.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.http import Http404

from builder.models import Agent, AgentSystem, ToolDefinition
from rag.models import Document, KnowledgeBase
from runtime.access import StoredAgent

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser
    from django.db.models import Model, QuerySet


@dataclass(frozen=True)
class Perms:
    view: bool = False
    edit: bool = False
    delete: bool = False
    publish: bool = False


FULL = Perms(view=True, edit=True, delete=True, publish=True)
NONE = Perms()


def perms_for(user: AbstractBaseUser, obj: Model) -> Perms:
    if not getattr(user, "is_staff", False):
        return NONE
    if user.is_superuser or getattr(obj, "owner_id", None) == user.pk:
        return FULL
    return NONE


def visible_to(user: AbstractBaseUser, queryset: QuerySet, *, owner_field: str = "owner") -> QuerySet:
    """Rows of ``queryset`` the user may see (the list-page counterpart of ``perms_for``);
    ``owner_field`` is the path to the owner, e.g. ``agent__owner`` for versions."""
    if not getattr(user, "is_staff", False):
        return queryset.none()
    if user.is_superuser:
        return queryset
    return queryset.filter(**{owner_field: user})


def _get(user: AbstractBaseUser, queryset: QuerySet, public_id: object) -> tuple[Model, Perms]:
    try:
        obj = queryset.get(public_id=public_id)
    except (queryset.model.DoesNotExist, ValueError, TypeError):
        raise Http404("Not found.") from None
    perms = perms_for(user, obj)
    if not perms.view:
        raise Http404("Not found.")
    return obj, perms


def get_agent_for_user(user: AbstractBaseUser, public_id: object) -> tuple[Agent, Perms]:
    return _get(user, Agent.objects.select_related("draft", "published_version", "owner"), public_id)


def get_tool_for_user(user: AbstractBaseUser, public_id: object) -> tuple[ToolDefinition, Perms]:
    return _get(user, ToolDefinition.objects.all(), public_id)


def get_system_for_user(user: AbstractBaseUser, public_id: object) -> tuple[AgentSystem, Perms]:
    return _get(user, AgentSystem.objects.select_related("entry_agent", "owner"), public_id)


class BuilderAgentAccess:
    """The runtime's view of stored agents and systems (``runtime.access``), from the rules above."""

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

    def can_edit(self, user: AbstractBaseUser, agent_key: str) -> bool:
        obj = (
            AgentSystem.objects.filter(slug=agent_key).first() or Agent.objects.filter(slug=agent_key).first()
        )
        return obj is not None and perms_for(user, obj).edit

    def editable_keys(self, user: AbstractBaseUser) -> list[QuerySet]:
        # perms_for: view and edit coincide today, so the visible rows are the editable ones.
        return [
            visible_to(user, Agent.objects.all()).values("slug"),
            visible_to(user, AgentSystem.objects.all()).values("slug"),
        ]


def get_knowledge_base_for_user(user: AbstractBaseUser, public_id: object) -> tuple[KnowledgeBase, Perms]:
    return _get(user, KnowledgeBase.objects.select_related("owner"), public_id)


def get_document_for_user(
    user: AbstractBaseUser, base_id: object, public_id: object
) -> tuple[Document, Perms]:
    """A document of a knowledge base the user may see (its permissions are the base's)."""
    base, perms = get_knowledge_base_for_user(user, base_id)
    try:
        return base.documents.select_related("knowledge_base").get(public_id=public_id), perms
    except (Document.DoesNotExist, ValueError, TypeError):
        raise Http404("Not found.") from None
