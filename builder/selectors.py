"""Reads: lists for pages, and what a configuration may refer to."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from django.db.models import F, Q, QuerySet

from builder.access import shared_with, visible_to
from builder.models import Agent, AgentSystem, AgentVersion, ToolDefinition, ToolKind
from builder.schema import Known
from runtime.llm import list_models
from runtime.tools.python import list_python_tools

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

logger = logging.getLogger(__name__)

DEMO_ONLY = {
    "models": [{"id": "demo", "name": "Demo (offline)", "provider": "demo", "is_demo": True}],
    "default": "demo",
}


def available_models() -> dict[str, Any]:
    """What the configured providers offer (``runtime.llm.list_models``), demo model included."""
    try:
        return list_models()
    except Exception:
        logger.exception("Listing models failed; offering the demo model only")
        return DEMO_ONLY


def python_tool_catalog() -> list[dict[str, Any]]:
    """The allow-listed Python tools: name, description, parameter schema."""
    catalog = []
    for tool in list_python_tools():
        catalog.append({"name": tool.name, "description": tool.description, "parameters": tool.parameters})
    return sorted(catalog, key=lambda t: t["name"])


def known_for(user: AbstractBaseUser) -> Known:
    return Known(
        models=frozenset(m["id"] for m in available_models()["models"]),
        http_tools=frozenset(
            visible_to(user, ToolDefinition.objects.filter(kind=ToolKind.HTTP)).values_list("name", flat=True)
        ),
        python_tools=frozenset(t["name"] for t in python_tool_catalog()),
        agents=frozenset(visible_to(user, Agent.objects.all()).values_list("slug", flat=True)),
    )


def _mine_or_shared(user: AbstractBaseUser, queryset: QuerySet, shared: bool) -> QuerySet:
    """Rows the user may see; ``shared``: only those others shared with them. Pages that show each
    row's role call ``builder.access.attach_roles`` on the rows they render."""
    return shared_with(user, queryset) if shared else visible_to(user, queryset)


def agent_list(
    *, user: AbstractBaseUser, search: str = "", status: str = "", shared: bool = False
) -> QuerySet[Agent]:
    """Agents the user may see; ``status`` is ``published``, ``pending`` (unpublished changes) or ``draft``;
    ``shared``: only agents others shared with the user (directly, through a team or a system)."""
    qs = _mine_or_shared(user, Agent.objects.all(), shared).select_related(
        "draft", "published_version", "owner"
    )
    if search:
        qs = qs.filter(
            Q(name__icontains=search) | Q(slug__icontains=search) | Q(description__icontains=search)
        )
    if status == "published":
        qs = qs.filter(published_version__isnull=False)
    elif status == "draft":
        qs = qs.filter(published_version__isnull=True)
    elif status == "pending":
        qs = qs.filter(published_version__isnull=False).exclude(
            draft__published_revision=F("draft__revision")
        )
    return qs.order_by("-updated_at")


def agent_versions(*, agent: Agent) -> QuerySet[AgentVersion]:
    return agent.versions.select_related("published_by").order_by("-number")


def tool_list(*, user: AbstractBaseUser, shared: bool = False) -> QuerySet[ToolDefinition]:
    return _mine_or_shared(user, ToolDefinition.objects.all(), shared).order_by("name")


def system_list(*, user: AbstractBaseUser, shared: bool = False) -> QuerySet[AgentSystem]:
    return (
        _mine_or_shared(user, AgentSystem.objects.all(), shared)
        .select_related("entry_agent")
        .order_by("-updated_at")
    )


def agent_dependants(*, agent: Agent) -> list[str]:
    """What would break if ``agent`` went: systems it belongs to, agents that call it (their draft
    or their published version). Read by everyone, so names are listed whoever owns them."""
    systems = AgentSystem.objects.filter(Q(entry_agent=agent) | Q(members__agent=agent)).distinct()
    link = [{"agent_key": agent.slug}]
    callers = (
        Agent.objects.filter(
            Q(draft__config__sub_agents__contains=link)
            | Q(published_version__config__sub_agents__contains=link)
        )
        .exclude(pk=agent.pk)
        .distinct()
    )
    return [f"system {name}" for name in systems.order_by("name").values_list("name", flat=True)] + [
        f"agent {name}" for name in callers.order_by("name").values_list("name", flat=True)
    ]


def tool_dependants(*, tool: ToolDefinition) -> list[str]:
    """Agents (the tool owner's, as the runtime resolves tools by owner) whose draft or published
    version uses ``tool``."""
    names = [tool.name]
    users = Agent.objects.filter(owner_id=tool.owner_id).filter(
        Q(draft__config__http_tools__contains=names)
        | Q(published_version__config__http_tools__contains=names)
    )
    return [f"agent {name}" for name in users.distinct().order_by("name").values_list("name", flat=True)]
