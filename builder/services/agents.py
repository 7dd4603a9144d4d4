"""Agent lifecycle: create, edit the draft, publish, restore, duplicate, delete, diff."""

from __future__ import annotations

import difflib
import json
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction
from django.db.models import Max

from builder.models import Agent, AgentDraft, AgentDraftRevision, AgentSystem, AgentVersion, AuditAction
from builder.schema import AgentConfig, ConfigError, Known, parse_config, validate_slug
from builder.selectors import agent_dependants
from builder.services.sharing import audit_record
from builder.services.templates import free_key
from runtime.registry import autodiscover, list_runtimes

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

DEFAULT_CONFIG: dict[str, Any] = AgentConfig().to_dict()


def code_agent_keys() -> set[str]:
    """Keys of agents registered in code: they win in the registry, so a builder agent may not reuse one."""
    autodiscover()
    return set(list_runtimes())


def _check_identity(*, slug: str | None, name: str, exclude_pk: int | None = None) -> dict[str, str]:
    errors: dict[str, str] = {}
    if slug is not None:
        problem = validate_slug(slug)
        if problem:
            errors["slug"] = problem
        elif slug in code_agent_keys():
            errors["slug"] = (
                f"The key {slug!r} is already taken by an agent registered in code; {free_key(slug)!r} is free."
            )
        elif (
            Agent.objects.filter(slug=slug).exclude(pk=exclude_pk).exists()
            or AgentSystem.objects.filter(slug=slug).exists()
        ):
            errors["slug"] = f"The key {slug!r} is already taken; {free_key(slug)!r} is free."
    if not name or not name.strip():
        errors["name"] = "Give the agent a name."
    elif len(name) > 200:
        errors["name"] = "Keep the name to 200 characters or fewer."
    return errors


def _validated(
    config: dict[str, Any], known: Known | None, slug: str, errors: dict[str, str]
) -> dict[str, Any]:
    try:
        return parse_config(config, known=known, self_key=slug).to_dict()
    except ConfigError as exc:
        errors.update(exc.errors)
        return {}


@transaction.atomic
def agent_create(
    *,
    owner: AbstractBaseUser,
    slug: str,
    name: str,
    description: str = "",
    icon: str = "",
    config: dict[str, Any] | None = None,
    known: Known | None = None,
) -> Agent:
    errors = _check_identity(slug=slug, name=name)
    clean = _validated(config if config is not None else DEFAULT_CONFIG, known, slug, errors)
    if errors:
        raise ConfigError(errors)
    try:
        with transaction.atomic():
            agent = Agent.objects.create(
                slug=slug, name=name.strip(), description=description, icon=icon or "🤖", owner=owner
            )
    except IntegrityError:
        # Two people creating the same key at once: the loser gets the same message.
        raise ConfigError({"slug": f"The key {slug!r} is already taken; choose another."}) from None
    AgentDraft.objects.create(agent=agent, config=clean, revision=1)
    AgentDraftRevision.objects.create(agent=agent, revision=1, config=clean, created_by=owner)
    return agent


@transaction.atomic
def agent_update_draft(
    *,
    agent: Agent,
    user: AbstractBaseUser,
    config: dict[str, Any],
    name: str | None = None,
    description: str | None = None,
    icon: str | None = None,
    known: Known | None = None,
) -> AgentDraft:
    """Save an edit: validate, bump the revision, keep the revision's text for pinned runs."""
    errors = _check_identity(slug=None, name=name if name is not None else agent.name)
    clean = _validated(config, known, agent.slug, errors)
    if errors:
        raise ConfigError(errors)
    draft = AgentDraft.objects.select_for_update().get(agent=agent)
    fields = ["updated_at"]
    for attr, value in (("name", name), ("description", description), ("icon", icon)):
        if value is not None:
            setattr(agent, attr, value.strip() if attr == "name" else value)
            fields.append(attr)
    agent.save(update_fields=fields)
    draft.config = clean
    draft.revision += 1
    draft.save(update_fields=["config", "revision", "updated_at"])
    AgentDraftRevision.objects.create(agent=agent, revision=draft.revision, config=clean, created_by=user)
    agent.draft = draft
    return draft


@transaction.atomic
def agent_publish(*, agent: Agent, user: AbstractBaseUser | None, note: str = "") -> AgentVersion:
    """Freeze the draft into the next numbered version and make it the published one."""
    draft = AgentDraft.objects.select_for_update().get(agent=agent)
    if draft.published_revision == draft.revision:
        raise ConfigError({"note": "Nothing changed since the last published version; edit the draft first."})
    if len(note) > 500:
        raise ConfigError({"note": "Keep the note to 500 characters or fewer."})
    # A stored draft may refer to a model that has since gone; publishing still checks the shape.
    parsed = parse_config(draft.config, self_key=agent.slug)
    _refuse_unpublished_sub_agents(agent, [link.agent_key for link in parsed.sub_agents])
    config = parsed.to_dict()
    number = (agent.versions.aggregate(n=Max("number"))["n"] or 0) + 1
    version = AgentVersion.objects.create(
        agent=agent,
        number=number,
        config=config,
        name=agent.name,
        description=agent.description,
        note=note,
        draft_revision=draft.revision,
        published_by=user,
    )
    draft.published_revision = draft.revision
    draft.save(update_fields=["published_revision", "updated_at"])
    agent.published_version = version
    agent.save(update_fields=["published_version", "updated_at"])
    audit_record(actor=user, action=AuditAction.PUBLISHED, obj=agent, detail=f"version {number}")
    return version


def _refuse_unpublished_sub_agents(agent: Agent, keys: list[str]) -> None:
    # Live, a sub-agent answers with its published version; one never published would answer
    # with whatever its draft holds that minute, so the parent waits for it.
    waiting = list(
        Agent.objects.filter(slug__in=keys, published_version__isnull=True)
        .exclude(pk=agent.pk)
        .order_by("name")
        .values_list("name", flat=True)
    )
    if waiting:
        names = ", ".join(waiting)
        raise ConfigError(
            {
                "sub_agents": f"Publish its sub-agent{'s' if len(waiting) > 1 else ''} {names} first: "
                "live, a sub-agent answers with its published version, and "
                f"{'these have' if len(waiting) > 1 else 'it has'} none yet."
            }
        )


@transaction.atomic
def agent_restore_version(*, agent: Agent, version: AgentVersion, user: AbstractBaseUser) -> AgentDraft:
    """Make ``version`` the draft again (a new draft revision; versions are never rewritten)."""
    if version.agent_id != agent.pk:
        raise ConfigError({"version": "That version belongs to another agent."})
    draft = agent_update_draft(
        agent=agent,
        user=user,
        config=version.config,
        name=version.name or agent.name,
        description=version.description,
    )
    audit_record(actor=user, action=AuditAction.RESTORED, obj=agent, detail=f"version {version.number}")
    return draft


@transaction.atomic
def agent_duplicate(*, agent: Agent, user: AbstractBaseUser, slug: str, name: str) -> Agent:
    return agent_create(
        owner=user,
        slug=slug,
        name=name,
        description=agent.description,
        icon=agent.icon,
        config=agent.draft.config,
    )


@transaction.atomic
def agent_delete(*, agent: Agent, user: AbstractBaseUser | None = None) -> None:
    """Refused while anything uses the agent: a system (published ones pin its version) or an
    agent that calls it would otherwise fail at run time, silently for whoever is chatting."""
    dependants = agent_dependants(agent=agent)
    if dependants:
        raise ConfigError(
            {
                "agent": f"{agent.name} is used by {', '.join(dependants)}; remove it there first, then delete it."
            }
        )
    audit_record(actor=user, action=AuditAction.DELETED, obj=agent)
    agent.delete()


def _readable(agent_name: str, description: str, config: dict[str, Any]) -> list[str]:
    """A version as lines a person reads: one field per line, the prompt line by line."""
    lines = [f"name: {agent_name}", f"description: {description}"]
    for key, value in config.items():
        if key == "system_prompt":
            lines.append("system_prompt:")
            lines.extend(f"  {line}" for line in str(value).splitlines() or [""])
        else:
            lines.append(f"{key}: {json.dumps(value, ensure_ascii=False, sort_keys=True)}")
    return lines


def version_diff(*, old: AgentVersion, new: AgentVersion) -> list[tuple[str, str]]:
    """(kind, line) pairs: kind is ``add``, ``del``, ``same`` or ``hunk``."""
    a = _readable(old.name, old.description, old.config)
    b = _readable(new.name, new.description, new.config)
    result: list[tuple[str, str]] = []
    for line in difflib.unified_diff(
        a, b, f"version {old.number}", f"version {new.number}", n=3, lineterm=""
    ):
        if line.startswith(("---", "+++")):
            continue
        if line.startswith("@@"):
            result.append(("hunk", line))
        elif line.startswith("+"):
            result.append(("add", line[1:]))
        elif line.startswith("-"):
            result.append(("del", line[1:]))
        else:
            result.append(("same", line[1:]))
    return result
