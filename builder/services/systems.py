"""Multi-agent systems: save, publish (pinning member versions) and delete."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import IntegrityError, transaction
from django.utils import timezone

from builder.models import Agent, AgentSystem, AuditAction, SystemMember
from builder.schema import ConfigError, validate_slug
from builder.services.agents import agent_publish, code_agent_keys
from builder.services.sharing import audit_record

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser


@transaction.atomic
def system_save(
    *,
    owner: AbstractBaseUser,
    slug: str,
    name: str,
    entry_agent: Agent,
    members: dict[str, str],
    description: str = "",
    system: AgentSystem | None = None,
) -> AgentSystem:
    """Create or update a system; ``members`` maps agent keys to roles (the entry agent is always a member)."""
    errors: dict[str, str] = {}
    if system is None:
        problem = validate_slug(slug)
        if problem:
            errors["slug"] = problem
        elif (
            AgentSystem.objects.filter(slug=slug).exists()
            or Agent.objects.filter(slug=slug).exists()
            or slug in code_agent_keys()
        ):
            errors["slug"] = f"The key {slug!r} is already taken; choose another."
    if not name.strip():
        errors["name"] = "Give the system a name."
    agents = {a.slug: a for a in Agent.objects.filter(slug__in=set(members) | {entry_agent.slug})}
    unknown = sorted(set(members) - set(agents))
    if unknown:
        errors["members"] = f"Unknown agent(s): {', '.join(unknown)}."
    if errors:
        raise ConfigError(errors)
    if system is None:
        system = AgentSystem(owner=owner, slug=slug)
    system.name, system.description, system.entry_agent = name.strip(), description, entry_agent
    try:
        with transaction.atomic():
            system.save()
    except IntegrityError:
        raise ConfigError({"slug": f"The key {slug!r} is already taken; choose another."}) from None
    roles = {entry_agent.slug: members.get(entry_agent.slug, "entry"), **members}
    system.members.exclude(agent__slug__in=roles).delete()
    for key, role in roles.items():
        SystemMember.objects.update_or_create(system=system, agent=agents[key], defaults={"role": role})
    return system


@transaction.atomic
def system_publish(*, system: AgentSystem, user: AbstractBaseUser) -> dict[str, str]:
    """Pin every member to the version it was tested with.

    The playground tests members' drafts, so a member with unpublished changes is
    published first; the pins then name exactly what was tested.
    """
    pins: dict[str, str] = {}
    members = [m.agent for m in system.members.select_related("agent__draft", "agent__published_version")]
    # a member that delegates to another member is published after it (sub-agents go live first)
    depth = {agent.slug: _delegates_to_members(agent, members) for agent in members}
    members.sort(key=lambda agent: depth[agent.slug])
    for agent in members:
        if agent.published_version is None or agent.draft.has_unpublished_changes:
            version = agent_publish(agent=agent, user=user, note=f"Published with system {system.name}")
        else:
            version = agent.published_version
        pins[agent.slug] = version.pin
    system.published_pins = pins
    system.published_at = timezone.now()
    system.published_by = user
    system.save(update_fields=["published_pins", "published_at", "published_by", "updated_at"])
    audit_record(actor=user, action=AuditAction.PUBLISHED, obj=system, detail=f"{len(pins)} member(s) pinned")
    return pins


def _delegates_to_members(agent: Agent, members: list[Agent]) -> int:
    """How deep ``agent``'s chain of sub-agents runs inside ``members`` (0: it calls none of them)."""
    by_slug = {member.slug: member for member in members}
    depth, frontier, seen = 0, [agent], {agent.slug}
    while frontier:
        nxt = []
        for current in frontier:
            for link in current.draft.config.get("sub_agents") or []:
                key = link if isinstance(link, str) else link.get("agent_key")  # stored drafts have both
                if key in by_slug and key not in seen:
                    seen.add(key)
                    nxt.append(by_slug[key])
        if nxt:
            depth += 1
        frontier = nxt
    return depth


@transaction.atomic
def system_delete(*, system: AgentSystem, user: AbstractBaseUser | None = None) -> None:
    audit_record(actor=user, action=AuditAction.DELETED, obj=system)
    system.delete()
